"""The components this server runs, as a person reads them: names, groups, one line each.

The engine registers components by Langflow's ``data.type`` (``flows.engine.components.REGISTRY``);
this module puts Langflow's display names on them for the pages (the supported-components page,
import refusals), and names the components of an export that this server cannot run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .engine.components import REGISTRY
from .engine.structure import is_comment_node

# data.type -> (Langflow's display name, group, what it does here). A registered type missing
# from this table is still listed (under "Other", by its type), so the page never hides one.
DESCRIBED: dict[str, tuple[str, str, str]] = {
    "ChatInput": ("Chat Input", "Inputs and outputs", "The message a run receives."),
    "TextInput": ("Text Input", "Inputs and outputs", "A text a run receives."),
    "ChatOutput": ("Chat Output", "Inputs and outputs", "The message a run answers."),
    "TextOutput": ("Text Output", "Inputs and outputs", "A text a run answers."),
    "Webhook": ("Webhook", "Inputs and outputs", "The body of a webhook call."),
    "LanguageModelComponent": ("Language Model", "Models and agents",
                               "A chat model over an OpenAI-compatible API."),
    "OpenAIModel": ("OpenAI", "Models and agents", "A chat model over an OpenAI-compatible API."),
    "Agent": ("Agent", "Models and agents", "A model that calls the tools connected to it."),
    "StructuredOutput": ("Structured Output", "Models and agents", "A model's answer as rows of a schema."),
    "BatchRunComponent": ("Batch Run", "Models and agents", "A model run once per row of a table."),
    "Prompt": ("Prompt Template", "Prompts and text", "A template filled with its variables."),
    "Prompt Template": ("Prompt Template", "Prompts and text", "A template filled with its variables."),
    "ParserComponent": ("Parser", "Prompts and text", "Rows or data turned into text by a template."),
    "parser": ("Parser", "Prompts and text", "Rows or data turned into text by a template."),
    "ParseData": ("Parse Data", "Prompts and text", "Data turned into text by a template."),
    "SplitText": ("Split Text", "Prompts and text", "A text cut into overlapping chunks."),
    "File": ("Read File", "Data and files", "The text of your uploaded files."),
    "SaveToFile": ("Write File", "Data and files", "A result saved as one of your files."),
    "SQLComponent": ("SQL Database", "Data and files", "Read-only queries on a database the operator lists."),
    "Knowledge": ("Knowledge", "Data and files", "Ingest into and retrieve from your knowledge bases."),
    "MemoryBase": ("Message History", "Data and files", "The session's earlier messages."),
    "URLComponent": ("URL", "Web and tools", "The text of web pages (public addresses only)."),
    "UnifiedWebSearch": ("Web Search", "Web and tools", "Results from the operator's search service."),
    "ArXivComponent": ("arXiv", "Web and tools", "Papers found on arXiv."),
    "CalculatorComponent": ("Calculator", "Web and tools", "Arithmetic, as an agent's tool."),
    "CurrentDate": ("Current Date", "Web and tools", "Today's date and time in a time zone."),
    "LoopComponent": ("Loop", "Logic", "Runs the connected steps once per item."),
}
GROUPS = ("Inputs and outputs", "Models and agents", "Prompts and text", "Data and files", "Web and tools",
          "Logic", "Other")


@dataclass(frozen=True)
class SupportedComponent:
    types: tuple[str, ...]  # Langflow's data.type values one component runs (e.g. "Prompt", "Prompt Template")
    name: str
    group: str
    description: str


def supported_components() -> list[tuple[str, list[SupportedComponent]]]:
    """Every registered component once (with all the types it runs), grouped as on the page
    (group order, then by name)."""
    by_class: dict[type, list[str]] = {}
    for type_name, component in REGISTRY.items():
        by_class.setdefault(component, []).append(type_name)
    items = []
    for types in by_class.values():
        name, group, description = DESCRIBED.get(types[0], (types[0], "Other", ""))
        items.append(SupportedComponent(types=tuple(types), name=name, group=group, description=description))
    grouped = []
    for group in GROUPS:
        members = sorted((item for item in items if item.group == group), key=lambda item: (item.name, item.types))
        if members:
            grouped.append((group, members))
    return grouped


def node_label(node: Any) -> str:
    """A node's name as Langflow shows it: its display name, else its type, else its id."""
    if not isinstance(node, dict):
        return "Unnamed component"
    data: dict = node["data"] if isinstance(node.get("data"), dict) else {}
    inner: dict = data["node"] if isinstance(data.get("node"), dict) else {}
    for value in (inner.get("display_name"), data.get("display_name"), data.get("type"), node.get("id")):
        if isinstance(value, str) and value.strip():
            return value.strip()
    return "Unnamed component"


def unsupported_components(data: Any) -> list[str]:
    """The display names of the components in a flow's ``data`` this server cannot run, each once,
    in the order of the export (a malformed graph has none here: its error says why)."""
    nodes = data.get("nodes") if isinstance(data, dict) else None
    if not isinstance(nodes, list):
        return []
    names: dict[str, None] = {}
    for node in nodes:
        if not isinstance(node, dict) or is_comment_node(node):
            continue
        data_type = node.get("data", {}).get("type") if isinstance(node.get("data"), dict) else None
        if isinstance(data_type, str) and data_type not in REGISTRY:
            names[node_label(node)] = None
    return list(names)
