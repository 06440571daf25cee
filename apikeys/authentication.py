from rest_framework import authentication, exceptions

from core.credentials import MISSING_KEY_MESSAGE  # noqa: F401  (re-exported: the answer when no key is sent)
from core.net import client_ip

from .services import AddressNotAllowed, InvalidApiKey, authenticate_api_key, record_failed_authentication
from .throttling import FailedAuthenticationThrottle

HEADER = "HTTP_X_API_KEY"
QUERY_PARAMETER = "x-api-key"
INVALID_KEY_MESSAGE = "Invalid or missing API key"

ADDRESS_REFUSED_MESSAGE = "This API key may not be used from your address."


def raw_key_from_request(request) -> str | None:
    """Return the key from the ``x-api-key`` header, else the query parameter; the header wins."""
    raw = request.META.get(HEADER)
    if raw is None:
        raw = request.GET.get(QUERY_PARAMETER)
    return raw


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Authenticate as the key's owner. No key: ``None``, so session auth may still run.

    Refusals answer 403 like Langflow, because there is no ``WWW-Authenticate`` scheme.
    An address with too many recent failures gets 429 before its key is even read; each
    failure is written to the audit log (lookup id and client IP, never the key), and the
    throttle bounds how many such lines one address can cause.

    A right key sent from outside its allowed IPs is such a failure too (logged, counted by
    the throttle: a stolen key tried from elsewhere is what the limit is for), answered with
    a message of its own that never lists the allowed addresses.
    """

    #: Tells the API schema (core.openapi) that this authenticator may answer 429.
    may_throttle = True

    def authenticate(self, request):
        raw = raw_key_from_request(request)
        if raw is None:
            return None
        return self.verify(request, raw)

    def verify(self, request, raw: str):
        """Check ``raw`` as a key sent with ``request``; return ``(user, api_key)`` or raise."""
        address = client_ip(request)
        failures = FailedAuthenticationThrottle(address)
        failures.check()
        try:
            api_key = authenticate_api_key(raw, client_ip=address)
        except InvalidApiKey as error:
            failures.record_failure()  # past the limit (a race of failures): 429, and no audit line
            record_failed_authentication(error, client_ip=address)
            message = ADDRESS_REFUSED_MESSAGE if isinstance(error, AddressNotAllowed) else INVALID_KEY_MESSAGE
            raise exceptions.AuthenticationFailed(message) from None
        return api_key.user, api_key


def raw_key_from_bearer(request) -> str | None:
    """Return the token of an ``Authorization: Bearer <token>`` header, else None."""
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


class BearerApiKeyAuthentication(ApiKeyAuthentication):
    """The same keys as ``Authorization: Bearer <key>``, as OpenAI's and MCP's clients send them.

    Only the routes that list it take it (the OpenAI Responses API and MCP): elsewhere Langflow's
    ``x-api-key`` is the one way. It runs after ``ApiKeyAuthentication``, so an ``x-api-key``
    wins over a Bearer token (``OpenAI(api_key="unused", default_headers={"x-api-key": key})``
    works); the token then goes through the very same checks, throttle and audit.
    """

    def authenticate(self, request):
        raw = raw_key_from_bearer(request)
        if raw is None:
            return None
        return self.verify(request, raw)
