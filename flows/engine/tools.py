"""Tool mode: a component connected to an Agent's ``tools`` input is called by the agent's model.

In a Langflow export such a node's only output is ``component_as_tool`` and its edge feeds the
agent's ``tools`` field. The node is not run before the agent: the run binds it (its stored and
tweaked parameters, and whatever edges feed it) into Tools, and the agent's model calls them.
Each Tool has a name, a description and a JSON schema of its arguments, built from the node's
inputs the export marks ``tool_mode: true``; a call runs the component's output with the call's
arguments as parameters, within the run's budget.

Naming follows Langflow's: a tool is named after the method of the output it computes
(``evaluate_expression``), and the export's ``tools_metadata`` (the "Actions" table) renames,
redescribes or disables tools by that name. A component lists the outputs it offers as tools,
by Langflow's name, in a ``tool_outputs`` class attribute (``{"evaluate_expression": "result"}``);
without one, every output is offered, named after its method here. A component that takes
tools (the Agent) says so with ``accepts_tools = True``.

A tool never fails the run: a bad argument or a component's FlowError becomes the text of the
``tool`` message the model reads. Only the run's time budget running out ends the run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import re
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .errors import FlowError
from .limits import ValueTooLarge, json_size
from .messages import Message, as_text

if TYPE_CHECKING:
    from .components.base import Component, RunContext
    from .graph import Node

# Langflow's names: the output a tool-mode node offers, the Agent's field that takes tools, and
# the template field holding the "Actions" table.
TOOL_OUTPUT = "component_as_tool"
TOOLS_FIELD = "tools"
TOOLS_METADATA_FIELD = "tools_metadata"
# OpenAI's rule for function names.
MAX_NAME_CHARS = 64
_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
# A stored value longer than this is not repeated in the schema as the argument's default.
MAX_DEFAULT_CHARS = 200
MAX_DESCRIPTION_CHARS = 1024

# Langflow's input types -> JSON schema types.
_JSON_TYPES = {
    "str": "string", "prompt": "string", "query": "string", "code": "string", "file": "string",
    "int": "integer", "float": "number", "slider": "number",
    "bool": "boolean", "dict": "object", "NestedDict": "object",
}


def tool_name(name: str) -> str:
    """``name`` as a function name OpenAI accepts (Langflow's rule: other characters become '-')."""
    return _NAME_UNSAFE.sub("-", name)[:MAX_NAME_CHARS] or "tool"


@dataclass(frozen=True)
class ToolSpec:
    """One tool a node offers: what the model is told, and the output a call computes."""

    name: str
    description: str
    parameters: Mapping[str, Any]  # the JSON schema of the arguments
    output: str

    @property
    def arguments(self) -> frozenset[str]:
        return frozenset(self.parameters.get("properties", {}))

    def definition(self, name: str | None = None) -> dict:
        """The OpenAI ``tools`` item (under ``name`` when the agent had to rename it)."""
        return {"type": "function", "function": {
            "name": name or self.name, "description": self.description, "parameters": _plain(self.parameters)}}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def tool_outputs(component: type[Component]) -> dict[str, str]:
    """Langflow's name of each tool the component offers -> the output it computes."""
    declared = getattr(component, "tool_outputs", None)
    if declared is not None:
        return dict(declared)
    return {method: output for output, method in component.outputs.items()}


def can_be_tool(component: type[Component]) -> bool:
    return bool(tool_outputs(component))


# --- Specs, built once per compiled graph -----------------------------------------------------

def tool_specs(raw_node: dict, component: type[Component]) -> tuple[ToolSpec, ...]:
    """The tools a node of the export offers, from its template (pure; the graph keeps them)."""
    inner = raw_node["data"]["node"]
    template = inner.get("template") or {}
    schema = _input_schema(template)
    description = inner.get("description") if isinstance(inner.get("description"), str) else ""
    offered = tool_outputs(component)
    metadata = _metadata(template)
    specs = []
    for tag, output in offered.items():
        entry = metadata.get(tag)
        if entry is None and metadata and len(offered) == 1 and len(metadata) == 1:
            # The export names its one tool differently from ours: it is still that tool.
            entry = next(iter(metadata.values()))
        if metadata and entry is None:
            continue  # Langflow offers only the tools its Actions table lists
        if entry is not None and entry.get("status") is False:
            continue  # disabled in the Actions table
        name = entry.get("name") if entry else None
        text = entry.get("description") if entry else None
        specs.append(ToolSpec(
            name=tool_name(name if isinstance(name, str) and name.strip() else tag),
            description=(text if isinstance(text, str) and text.strip() else description)[:MAX_DESCRIPTION_CHARS],
            parameters=schema,
            output=output,
        ))
    return tuple(specs)


def _metadata(template: dict) -> dict[str, dict]:
    """The Actions table by each tool's tag (Langflow's original name of the tool)."""
    field = template.get(TOOLS_METADATA_FIELD)
    rows = field.get("value") if isinstance(field, dict) else None
    found = {}
    for row in rows if isinstance(rows, list) else ():
        if not isinstance(row, dict):
            continue
        tags = row.get("tags")
        tag = tags[0] if isinstance(tags, list) and tags and isinstance(tags[0], str) else row.get("name")
        if isinstance(tag, str):
            found[tag] = row
    return found


def _input_schema(template: dict) -> Mapping[str, Any]:
    properties, required = {}, []
    for name, field in template.items():
        if not isinstance(field, dict) or not field.get("tool_mode") or name in (TOOLS_METADATA_FIELD, "code"):
            continue
        properties[name] = _property(field)
        if field.get("required") is True:
            required.append(name)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return MappingProxyType(schema)


def _property(field: dict) -> dict:
    kind = _JSON_TYPES.get(str(field.get("type")), "string")
    prop: dict[str, Any] = {"type": kind}
    options = field.get("options")
    if isinstance(options, list) and options and all(isinstance(option, (str, int, float)) for option in options) \
            and kind in ("string", "integer", "number"):
        prop["enum"] = list(options)
    value = field.get("value")
    if field.get("list") or field.get("is_list"):
        prop = {"type": "array", "items": prop}
    elif isinstance(value, (int, float, bool)) or (isinstance(value, str) and 0 < len(value) <= MAX_DEFAULT_CHARS):
        if kind != "string" or isinstance(value, str):
            prop["default"] = value
    title = field.get("display_name")
    if isinstance(title, str) and title:
        prop["title"] = title
    info = field.get("info")
    if isinstance(info, str) and info:
        prop["description"] = info[:MAX_DESCRIPTION_CHARS]
    return prop


# --- Calling a tool ----------------------------------------------------------------------------

class BadArguments(Exception):
    """The model's arguments do not fit the tool's schema; ``str()`` tells the model why."""


@dataclass(frozen=True)
class ToolResult:
    text: str
    failed: bool = False


@dataclass(frozen=True)
class Tool:
    """A node bound for one run: its parameters, to which each call adds its arguments."""

    spec: ToolSpec
    node: Node
    params: Mapping[str, Any]

    @property
    def name(self) -> str:
        return self.spec.name

    def __repr__(self) -> str:  # what a Tool reads as if it ever reaches a text
        return f"<Tool {self.spec.name} of node {self.node.id}>"

    __str__ = __repr__

    def parameters(self, arguments: str) -> dict[str, Any]:
        """The node's parameters with the call's arguments (JSON text); raise BadArguments."""
        try:
            given = json.loads(arguments) if arguments.strip() else {}
        except (ValueError, RecursionError):
            raise BadArguments("the arguments are not valid JSON") from None
        if not isinstance(given, dict):
            raise BadArguments("the arguments must be a JSON object")
        properties = self.spec.parameters.get("properties", {})
        unknown = [name for name in given if name not in properties]
        if unknown:
            expected = ", ".join(properties) or "none"
            raise BadArguments(f"unknown argument(s) {', '.join(repr(name) for name in unknown[:10])}; "
                               f"expected: {expected}")
        params = dict(self.params)
        for name, value in given.items():
            if value is None:
                continue  # the stored value stands
            params[name] = _conform(name, value, properties[name])
        missing = [name for name in self.spec.parameters.get("required", ()) if params.get(name) in (None, "", [])]
        if missing:
            raise BadArguments(f"missing required argument(s) {', '.join(repr(name) for name in missing)}")
        return params

    async def call(self, arguments: str, context: RunContext) -> ToolResult:
        """Run the node's output with ``arguments``; a failure is the result's text.

        Raises LimitExceeded only when the run's time budget runs out."""
        budget = context.budget
        budget.check_time(self.node.id)
        try:
            params = self.parameters(arguments)
        except BadArguments as error:
            return ToolResult(f"Error: {error}.", failed=True)
        # The tool's own model calls are not streamed to the client: the agent reports the step.
        quiet = dataclasses.replace(context, stream=False)
        component = self.node.component(node=self.node, params=params, context=quiet)
        deadline = asyncio.timeout(budget.remaining())
        try:
            async with deadline:
                await component.check()
                method = getattr(component, self.node.component.outputs[self.spec.output])
                value = await produced_value(method)
                text = result_text(value, limit=budget.value_room())
                budget.charge_value(text, self.node.id)
        except TimeoutError:
            if deadline.expired():
                raise budget.out_of_time(self.node.id) from None
            raise
        except ValueTooLarge:
            return ToolResult(f"Error: {budget.too_large(self.node.id)}", failed=True)
        except RecursionError:
            return ToolResult(f"Error: Node {self.node.id}: its input is nested too deeply.", failed=True)
        except FlowError as error:
            if budget.expired():
                raise budget.out_of_time(self.node.id) from None
            return ToolResult(f"Error: {error}", failed=True)
        return ToolResult(text)


def _conform(name: str, value: Any, schema: Mapping[str, Any]) -> Any:
    """``value`` as the schema's type, converting the obvious (a number sent as text); raise BadArguments."""
    kind = schema.get("type")
    if kind == "array":
        items = value if isinstance(value, list) else [value]
        return [_conform(name, item, schema.get("items", {})) for item in items]
    if kind == "string":
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise BadArguments(f"argument {name!r} must be a string")
        value = value if isinstance(value, str) else str(value)
    elif kind == "integer":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise BadArguments(f"argument {name!r} must be an integer") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadArguments(f"argument {name!r} must be an integer")
    elif kind == "number":
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise BadArguments(f"argument {name!r} must be a number") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BadArguments(f"argument {name!r} must be a number")
    elif kind == "boolean":
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            value = value.strip().lower() == "true"
        if not isinstance(value, bool):
            raise BadArguments(f"argument {name!r} must be true or false")
    elif kind == "object" and not isinstance(value, dict):
        raise BadArguments(f"argument {name!r} must be an object")
    enum = schema.get("enum")
    if enum and value not in enum:
        raise BadArguments(f"argument {name!r} must be one of {', '.join(map(str, enum[:20]))}")
    return value


def result_text(value: Any, *, limit: int) -> str:
    """What the model reads of a tool's value: a Message's text, Data as JSON. Raise
    ValueTooLarge past ``limit`` bytes (measured before a JSON text is written)."""
    if isinstance(value, (str, Message)) or value is None:
        return as_text(value)
    if isinstance(value, list) and all(isinstance(item, (str, Message)) for item in value):
        return as_text(value, limit=limit)
    if isinstance(value, (dict, list)):
        if json_size(value) > limit:
            raise ValueTooLarge(limit)
        return json.dumps(value, ensure_ascii=False, default=_json_default)
    return str(value)


def _json_default(value: Any) -> Any:
    return value.text if isinstance(value, Message) else str(value)


# --- Output methods of any shape ---------------------------------------------------------------

async def output_items(method) -> AsyncGenerator[Any, None]:
    """Call an output method of any of the allowed shapes; its value comes last, as Produced.

    A plain method returns its value; a generator yields events and returns it; a coroutine
    returns it; an async generator (one that awaits a model) yields events and then Produced.
    """
    from .components.base import Produced

    result = method()
    if inspect.isgenerator(result):
        while True:
            try:
                yield next(result)
            except StopIteration as done:
                yield Produced(done.value)
                return
    elif inspect.isasyncgen(result):
        async with aclosing(result):
            async for item in result:
                yield item
    elif inspect.iscoroutine(result):
        yield Produced(await result)
    else:
        yield Produced(result)


async def produced_value(method) -> Any:
    """The value an output method produces, its events passed over."""
    from .components.base import Produced

    async with aclosing(output_items(method)) as items:
        async for item in items:
            if isinstance(item, Produced):
                return item.value
    return None


def bound_tools(value: Any) -> list[Tool] | None:
    """The Tools in what an Agent's ``tools`` field received (one edge's list, or several
    edges' lists), or None when it holds something that is not a tool."""
    if value in (None, "", []):
        return []
    found = []
    pending = value if isinstance(value, list) else [value]
    for item in pending:
        if isinstance(item, Tool):
            found.append(item)
        elif isinstance(item, list) and all(isinstance(inner, Tool) for inner in item):
            found.extend(item)
        else:
            return None
    return found
