"""Before a run: would the flow's model calls find a model server and a key?

The flow page warns when a node that calls a model would go to a server that needs a key
(OpenAI's) and none is set up: not in the node, not in the owner's variable the node loads, not
in the server's ``OPENAI_API_KEY``. A run would fail with the provider's refusal or "could not
connect"; the warning names the node and says what to configure. A run's own tweaks or headers
may still bring a key, so it is a warning, never a refusal.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from variables.models import Variable
from variables.resolve import SERVER_SECRETS

from . import engine
from .engine.components.language_model import LanguageModel, OpenAIModel
from .models import Flow
from .services import flow_graph

KEY_FIELD = "api_key"


@dataclass(frozen=True)
class ModelWarning:
    """One model node without a way to its model: ``variable`` is the variable to create, if that is the fix."""

    node_id: str
    node_name: str
    message: str
    variable: str | None = None


def _needs_key(base_url: str) -> bool:
    """OpenAI's API refuses a call without a key; a local server (Ollama, vLLM, LM Studio) may need none."""
    host = (urlsplit(base_url.strip()).hostname or "").lower()
    return host == "openai.com" or host.endswith(".openai.com")


def _from_environment(name: str) -> bool:
    return bool(settings.VARIABLES_FALLBACK_TO_ENV and name.upper() not in SERVER_SECRETS and os.environ.get(name))


def model_setup_warnings(flow: Flow) -> list[ModelWarning]:
    """The flow's model nodes that have no key for the server they would call (none when the flow cannot run)."""
    try:
        graph = flow_graph(flow)
    except engine.InvalidGraph:
        return []
    model_nodes = [node for node in graph.nodes.values() if issubclass(node.component, (LanguageModel, OpenAIModel))]
    wanted = {ref.name for node in model_nodes for ref in node.variables if ref.field == KEY_FIELD}
    existing = set(Variable.objects.filter(owner_id=flow.owner_id, name__in=wanted).values_list("name", flat=True)) if wanted else set()
    warnings = []
    for node in model_nodes:
        fed = {edge.field for edge in node.inputs}
        if KEY_FIELD in fed:
            continue
        variable = next((ref.name for ref in node.variables if ref.field == KEY_FIELD), None)
        if variable is not None:
            if variable not in existing and not _from_environment(variable):
                warnings.append(ModelWarning(node.id, node.display_name, (
                    f"It loads its API key from your variable {variable}, which does not exist yet."), variable))
            continue
        own_key = node.params.get(KEY_FIELD)
        if isinstance(own_key, str) and own_key.strip():
            continue
        chosen = node.params.get(getattr(node.component, "base_url_field", "base_url"))
        chosen = chosen.strip() if isinstance(chosen, str) else ""
        if chosen and chosen.rstrip("/") != settings.OPENAI_BASE_URL.rstrip("/"):
            if _needs_key(chosen):
                warnings.append(ModelWarning(node.id, node.display_name, (
                    f"It calls {chosen} without an API key (the server's OPENAI_API_KEY is never sent to "
                    "a base URL a flow chooses).")))
            continue
        if not settings.OPENAI_API_KEY and _needs_key(settings.OPENAI_BASE_URL):
            warnings.append(ModelWarning(node.id, node.display_name, (
                f"It has no API key of its own, and this server has no OPENAI_API_KEY for {settings.OPENAI_BASE_URL} "
                "(nor an OPENAI_BASE_URL of a local model server).")))
    return warnings
