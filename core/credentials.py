"""Words shared by the API's authentication (apikeys) and its error answers (core.api).

A leaf module: the authenticators are imported while DRF loads its settings, so they cannot
import ``core.api`` (which imports DRF's views) without a cycle.
"""

#: The answer to a request that carries no credentials (Langflow's words).
MISSING_KEY_MESSAGE = "An API key must be passed as query or header"
