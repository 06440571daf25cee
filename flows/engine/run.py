"""One run of a compiled graph: apply tweaks and inputs, execute the needed nodes, report.

``plan_run`` checks the whole request first (pure work, done beside the request's queries);
``check_plan`` then has each needed component check the parameters no edge will replace (a
model node's base URL, whose host is looked up), so that a streamed run never starts only to
fail on a typo or a refused address. ``execute`` is an async generator that yields events
(``("add_message", {...})``, ``("token", {...})``, ``("end_vertex", {...})``) and, last,
``(RESULT, RunResult)``: a run waiting on a model holds no thread.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from .components.base import Component, Produced, RunContext
from .errors import ComponentError, InvalidRunRequest
from .graph import CODE_FIELD, Graph, Node
from .messages import as_text

INPUT_TYPES = ("chat", "text", "any")
OUTPUT_TYPES = ("chat", "text", "any", "debug")
# Keys of the older ``inputs`` body that mean "the flow's input".
GENERIC_INPUT_KEYS = ("input_value", "text", "message")
_INPUT_ROLES = {"chat": ("chat_input",), "text": ("text_input",), "any": ("chat_input", "text_input")}
_OUTPUT_ROLES = {"chat": ("chat_output",), "text": ("text_output",), "any": ("chat_output", "text_output")}

Event = tuple[str, dict]
# The name of ``execute``'s last item, which carries the RunResult; never sent to a client.
RESULT = "run_result"


@dataclass
class RunRequest:
    """Langflow's run body (``inputs`` is the older form's dict)."""

    input_value: str | None = None
    input_type: str = "chat"
    output_type: str = "chat"
    output_component: str | None = None
    tweaks: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    session_id: str | None = None
    stream: bool = False


@dataclass
class Plan:
    graph: Graph
    params: dict[str, dict[str, Any]]
    run_order: list[Node]
    output_nodes: list[Node]
    context: RunContext
    input_value: str


@dataclass
class NodeResult:
    node: Node
    output: str
    value: Any


@dataclass
class RunResult:
    session_id: str
    input_value: str
    outputs: list[NodeResult]


def _refuse(message: str, *node_ids: str) -> InvalidRunRequest:
    return InvalidRunRequest(message, node_ids=node_ids)


def _apply_tweaks(graph: Graph, params: dict[str, dict], tweaks: dict[str, Any]) -> None:
    """By node id, else by display name, else (a plain value) to every node with that field."""
    for key, value in tweaks.items():
        if key in graph.nodes:
            targets = [graph.nodes[key]]
        else:
            targets = graph.by_display_name(key)
        if targets:
            if not isinstance(value, dict):
                raise _refuse(f"Tweak {key!r} must be an object of field values.", *(n.id for n in targets))
            for node in targets:
                for name, field_value in value.items():
                    if name == CODE_FIELD:
                        raise _refuse(f"Tweak {key!r} targets the 'code' field of node {node.id}: "
                                      "components' code cannot be changed.", node.id)
                    params[node.id][name] = field_value
            continue
        if key == CODE_FIELD:
            raise _refuse("A tweak cannot change components' 'code' field.")
        if isinstance(value, dict):
            raise _refuse(f"Tweak {key!r} names no node (neither a node id nor a display name).")
        holders = [node for node in graph.nodes.values() if key in node.fields]
        if not holders:
            raise _refuse(f"Tweak {key!r} names no node and no field of any node.")
        for node in holders:
            params[node.id][key] = value


def _check_fields(graph: Graph, params: dict[str, dict]) -> None:
    """Every parameter must be a field the node has (template, component-known, or dynamic)."""
    for node in graph.nodes.values():
        known = node.fields | node.component.dynamic_fields(params[node.id])
        unknown = sorted(set(params[node.id]) - known)
        if unknown:
            raise _refuse(f"Node {node.id} ({node.type}) has no field {', '.join(map(repr, unknown))}.", node.id)


def _unconnected_prompt_variables(graph: Graph, params: dict[str, dict], name: str) -> list[Node]:
    return [
        node for node in graph.nodes.values()
        if name in node.component.dynamic_fields(params[node.id])
        and not any(edge.field == name for edge in node.inputs)
    ]


def _input_text(key: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (str, int, float, bool)):
        return str(value)
    raise _refuse(f"Input {key!r} must be text.")


def _apply_inputs(graph: Graph, params: dict[str, dict], request: RunRequest) -> None:
    """The run's ``input_value`` goes to the inputs of ``input_type``; the older ``inputs``
    dict by node id, display name, generic key (the flow's single input), or prompt variable.
    An empty value is no value: the node keeps its stored (or tweaked) one."""
    if request.input_value:
        for node in graph.by_role(*_INPUT_ROLES[request.input_type]):
            params[node.id]["input_value"] = request.input_value
    inputs = graph.by_role("chat_input", "text_input")
    for key, value in request.inputs.items():
        text = _input_text(key, value)
        if key in graph.nodes and graph.nodes[key] in inputs:
            targets = [graph.nodes[key]]
        elif [node for node in inputs if node.display_name == key]:
            targets = [node for node in inputs if node.display_name == key]
        elif key in GENERIC_INPUT_KEYS and len(inputs) == 1:
            targets = inputs
        else:
            prompts = _unconnected_prompt_variables(graph, params, key)
            for node in prompts:
                if text:
                    params[node.id][key] = text
            if prompts:
                continue
            if key in GENERIC_INPUT_KEYS and inputs:
                raise _refuse(f"Input {key!r} is ambiguous: this flow has {len(inputs)} inputs "
                              f"({', '.join(node.id for node in inputs)}); name one by node id.")
            raise _refuse(f"Input {key!r} matches no input component (by node id or display name) "
                          "and no unconnected prompt variable.")
        for node in targets:
            if text:  # as with input_value, an empty input leaves the stored (or tweaked) value
                params[node.id]["input_value"] = text


def _output_nodes(graph: Graph, request: RunRequest) -> list[Node]:
    if request.output_component:
        node = graph.nodes.get(request.output_component)
        if node is None:
            raise _refuse(f"output_component {request.output_component!r} is not a node of this flow.")
        return [node]
    if request.output_type == "debug":
        return list(graph.nodes.values())
    return graph.by_role(*_OUTPUT_ROLES[request.output_type])


async def check_plan(plan: Plan) -> None:
    """Have each needed component check the parameters no edge will replace; raise FlowError."""
    for node in plan.run_order:
        if node.component.check is Component.check:
            continue  # nothing to check: spare the hot path building the component
        fed = {edge.field for edge in node.inputs}
        own = {name: value for name, value in plan.params[node.id].items() if name not in fed}
        await node.component(node=node, params=own, context=plan.context).check()


def plan_run(graph: Graph, request: RunRequest, *, flow_id: str) -> Plan:
    """Check the request against the graph and settle every node's parameters."""
    if request.input_type not in INPUT_TYPES:
        raise _refuse(f"input_type must be one of {', '.join(INPUT_TYPES)}.")
    if request.output_type not in OUTPUT_TYPES:
        raise _refuse(f"output_type must be one of {', '.join(OUTPUT_TYPES)}.")
    params = {node_id: dict(node.params) for node_id, node in graph.nodes.items()}
    _apply_tweaks(graph, params, request.tweaks)
    _check_fields(graph, params)
    _apply_inputs(graph, params, request)
    outputs = _output_nodes(graph, request)
    needed = graph.with_ancestors({node.id for node in outputs})
    run_order = [node for node in graph.nodes.values() if node.id in needed]
    context = RunContext(flow_id=flow_id, session_id=request.session_id or flow_id, stream=request.stream)
    return Plan(
        graph=graph,
        params=params,
        run_order=run_order,
        output_nodes=outputs,
        context=context,
        input_value=request.input_value or "",
    )


async def _output(method) -> AsyncIterator[Event | Produced]:
    """Call an output method of any of the allowed shapes; its value comes last, as Produced.

    A plain method returns its value; a generator yields events and returns it; a coroutine
    returns it; an async generator (one that awaits a model) yields events and then Produced.
    """
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


async def execute(plan: Plan) -> AsyncIterator[Event]:
    """Run the planned nodes in dependency order, each edge feeding its target's field.

    Yields the run's events, then ``(RESULT, RunResult)``.
    """
    values: dict[tuple[str, str], Any] = {}
    wanted: dict[str, set[str]] = {}
    for node in plan.run_order:
        for edge in node.inputs:
            wanted.setdefault(edge.source, set()).add(edge.output)
    results = []
    output_ids = {node.id for node in plan.output_nodes}
    for node in plan.run_order:
        params = dict(plan.params[node.id])
        fed: dict[str, list] = {}
        for edge in node.inputs:
            fed.setdefault(edge.field, []).append(values[(edge.source, edge.output)])
        for name, received in fed.items():  # several edges into one field make a list
            params[name] = received[0] if len(received) == 1 else received
        component = node.component(node=node, params=params, context=plan.context)
        names = [name for name in node.component.outputs if name in wanted.get(node.id, ())]
        default = next(iter(node.component.outputs))
        if node.id in output_ids and default not in names:
            names.insert(0, default)
        for name in names:
            try:
                async with aclosing(_output(getattr(component, node.component.outputs[name]))) as items:
                    async for item in items:
                        if isinstance(item, Produced):
                            values[(node.id, name)] = item.value
                        else:
                            yield item
            except RecursionError:
                raise ComponentError(f"Node {node.id}: its input is nested too deeply.", node_ids=(node.id,)) from None
        yield "end_vertex", {"build_data": {"id": node.id, "valid": True}}
        if node.id in output_ids:
            results.append(NodeResult(node=node, output=default, value=values[(node.id, default)]))
    yield RESULT, RunResult(session_id=plan.context.session_id, input_value=plan.input_value, outputs=results)


async def run_to_end(plan: Plan) -> RunResult:
    """Execute without streaming: pass over the events, return the result."""
    async with aclosing(execute(plan)) as events:
        async for name, data in events:
            if name == RESULT:
                return data
    raise AssertionError("execute() ended without its result")


def output_text(result: NodeResult) -> str:
    return as_text(result.value)
