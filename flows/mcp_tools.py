"""Flows as MCP tools: each flow a request may run, named, described and given an input schema
from the flow itself; a call runs it on the usual path (``services.plan_run``, then awaited).

**Names.** A flow's endpoint name, else a slug of its name (``Basic Prompting`` ->
``basic_prompting``). A slug already taken (by an endpoint name, or an older flow's slug) gets
the first 8 hex digits of the flow's id (``basic_prompting_3f1c9a55``), so a flow's tool name
does not change when flows are added. Names are worked out over every flow the request may
run (one query of ids and names), so listing and calling agree.

**Inputs.** A flow with one Chat Input or Text Input takes ``input_value``; with several, one
argument per input, named after its display name (else its node id). Every tool also takes
``session_id``: calls naming the same one share the flow's chat memory (``flows.memory``); by
default each call is a conversation of its own.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.http import Http404

from core import dbthreads

from . import engine, services
from .engine.graph import Graph, Node
from .models import Flow, FlowPermission

logger = logging.getLogger("flows.mcp")

PAGE_SIZE = 50
SESSION_ARGUMENT = "session_id"
SINGLE_INPUT = "input_value"
INPUT_ROLES = ("chat_input", "text_input")
_NOT_A_NAME_CHARACTER = re.compile(r"[^a-z0-9]+")


class UnknownTool(LookupError):
    """No flow the request may run has this tool name."""


class BadArguments(ValueError):
    """Arguments the tool's input schema does not allow."""


def slug(text: str, limit: int = 64) -> str:
    return _NOT_A_NAME_CHARACTER.sub("_", text.lower()).strip("_")[:limit].strip("_")


def tool_names(user, api_key) -> dict[str, uuid.UUID]:
    """Every tool name the request may call, and its flow's id: one query, oldest flows first."""
    rows = (Flow.objects.visible_to(user, api_key, FlowPermission.RUN)
            .order_by("created_at", "id").values_list("id", "name", "endpoint_name"))
    names: dict[str, uuid.UUID] = {}
    slugs = []
    for flow_id, name, endpoint_name in rows:
        if endpoint_name:
            names[endpoint_name] = flow_id
        else:
            slugs.append((flow_id, slug(name) or "flow"))
    for flow_id, wanted in slugs:
        names[wanted if wanted not in names else f"{wanted}_{flow_id.hex[:8]}"] = flow_id
    return names


def tool_name(flow: Flow) -> str:
    """The tool name of ``flow`` for its owner (the flow page's MCP snippet shows it)."""
    return next(name for name, flow_id in tool_names(flow.owner, None).items() if flow_id == flow.pk)


def tool_inputs(graph: Graph) -> dict[str, Node]:
    """The tool's arguments (but ``session_id``) and the input node each one feeds."""
    nodes = graph.by_role(*INPUT_ROLES)
    if len(nodes) == 1:
        return {SINGLE_INPUT: nodes[0]}
    arguments: dict[str, Node] = {}
    for node in nodes:
        name = slug(node.display_name)
        if not name or name in arguments or name == SESSION_ARGUMENT:
            name = node.id
        arguments[name] = node
    return arguments


def _input_description(node: Node) -> str:
    kind = "message" if node.role == "chat_input" else "text"
    return f"The {kind} for the flow's “{node.display_name}” input ({node.id}); empty keeps the stored value."


def tool_definition(name: str, flow: Flow, graph: Graph) -> dict:
    """The MCP ``Tool``: name, description and JSON schema of its arguments."""
    properties: dict[str, Any] = {
        argument: {"type": "string", "description": _input_description(node)}
        for argument, node in tool_inputs(graph).items()
    }
    properties[SESSION_ARGUMENT] = {
        "type": "string", "maxLength": 255,
        "description": "A conversation id: calls with the same one share the flow's chat memory.",
    }
    description = flow.description.strip() or f"Run the flow “{flow.name}”."
    return {
        "name": name,
        "title": flow.name,
        "description": description,
        "input_schema": {"type": "object", "properties": properties, "additionalProperties": False},
    }


def list_tools(user, api_key, cursor: str | None) -> tuple[list[dict], str | None]:
    """One page of tools (at most PAGE_SIZE flows) and the next page's cursor, or None.

    Flows that cannot run here (unsupported components...) are left out. Graphs come from the
    compiled-graph cache; only a miss reads a flow's data."""
    try:
        start = max(int(cursor or 0), 0)
    except ValueError:
        raise BadArguments("Invalid cursor.") from None
    names = list(tool_names(user, api_key).items())
    page = names[start:start + PAGE_SIZE]
    flows = Flow.objects.filter(pk__in=[flow_id for _, flow_id in page]).defer("data").in_bulk()
    tools = []
    for name, flow_id in page:
        flow = flows.get(flow_id)
        if flow is None:
            continue  # deleted meanwhile
        try:
            graph = services.flow_graph(flow)
        except engine.InvalidGraph:
            continue
        tools.append(tool_definition(name, flow, graph))
    more = start + PAGE_SIZE < len(names)
    return tools, str(start + PAGE_SIZE) if more else None


def plan_call(user, api_key, name: str, arguments: dict[str, Any] | None,
              request_variables: dict[str, str] | None = None) -> engine.Plan:
    """Find the tool's flow (the key's scope applies again) and plan its run; raise UnknownTool,
    BadArguments, or ``engine.FlowError`` as ``/run`` does."""
    flow_id = tool_names(user, api_key).get(name)
    if flow_id is None:
        raise UnknownTool(name)
    try:
        flow = services.get_flow_for_request(user=user, api_key=api_key, reference=str(flow_id),
                                             permission=FlowPermission.RUN, with_data=False)
    except Http404:
        raise UnknownTool(name) from None
    arguments = dict(arguments or {})
    session_id = arguments.pop(SESSION_ARGUMENT, None)
    if session_id is not None and (not isinstance(session_id, str) or len(session_id) > 255):
        raise BadArguments("session_id must be text of at most 255 characters.")
    expected = tool_inputs(services.flow_graph(flow))
    unknown = sorted(set(arguments) - set(expected))
    if unknown:
        raise BadArguments(f"Unknown argument(s): {', '.join(unknown[:20])}. This tool takes "
                           f"{', '.join([*expected, SESSION_ARGUMENT])}.")
    inputs = {}
    for argument, value in arguments.items():
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise BadArguments(f"{argument} must be text.")
        inputs[expected[argument].id] = "" if value is None else str(value)
    try:
        return services.plan_run(flow=flow, output_type="any", inputs=inputs,
                                 session_id=session_id or str(uuid.uuid4()), request_variables=request_variables)
    except ValidationError as error:
        raise BadArguments("; ".join(error.messages)) from None


async def call_tool(user, api_key, name: str, arguments: dict[str, Any] | None,
                    request_variables: dict[str, str] | None = None) -> tuple[list[str], bool]:
    """Run the tool's flow: ``(texts of its outputs, is_error)``. A run that fails is the tool's
    answer (``is_error``), for the calling model to read; UnknownTool and BadArguments are raised."""
    try:
        plan = await dbthreads.run(plan_call, user, api_key, name, arguments, request_variables)
        result = await services.process_planned(plan)
    except engine.FlowError as error:
        if error.status_code >= 500:
            logger.warning("MCP call of %s failed: %s", name, error)
        return [str(error)], True
    return list(result["result"]["outputs"].values()), False
