"""One run of a compiled graph: apply tweaks and inputs, execute the needed nodes, report.

``plan_run`` checks the whole request first (pure work, done beside the request's queries);
``check_plan`` then has each needed component check the parameters no edge will replace (a
model node's base URL, whose host is looked up), so that a streamed run never starts only to
fail on a typo or a refused address. ``execute`` is an async generator that yields events
(``("add_message", {...})``, ``("token", {...})``, ``("end_vertex", {...})``) and, last,
``(RESULT, RunResult)``: a run waiting on a model holds no thread.

The components run on the event loop, so every step is bounded (``limits``): planning is linear
in the graph and the request, and sets at most FLOW_MAX_RUN_PARAMETERS parameters; each value a
node builds is measured before it is built; the run's output, its answer and its time are
budgeted (``RunBudget``), the clock checked before every node and passed to every model call.

A node connected to an agent's ``tools`` input is not run in turn: it is bound into Tools
(``tools``) that the agent's model calls, each call within the same budget.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from . import loops
from .components.base import Component, Produced, RunContext
from .errors import ComponentError, InvalidRunRequest
from .graph import CODE_FIELD, Graph, Node
from .limits import LimitExceeded, Limits, RunBudget, ValueTooLarge, json_size
from .messages import as_text
from .structure import listed
from .tools import TOOL_OUTPUT, Tool, output_items

INPUT_TYPES = ("chat", "text", "any")
OUTPUT_TYPES = ("chat", "text", "any", "debug")
# Keys of the older ``inputs`` body that mean "the flow's input".
GENERIC_INPUT_KEYS = ("input_value", "text", "message")
_INPUT_ROLES = {"chat": ("chat_input",), "text": ("text_input",), "any": ("chat_input", "text_input")}
_OUTPUT_ROLES = {"chat": ("chat_output",), "text": ("text_output",), "any": ("chat_output", "text_output")}

Event = tuple[str, dict]
# The name of ``execute``'s last item, which carries the RunResult; never sent to a client.
RESULT: Literal["run_result"] = "run_result"


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
    budget: RunBudget | None = None  # what the answer may still take (None: no limit)


# ``execute``'s last item.
ResultEvent = tuple[Literal["run_result"], RunResult]


def _refuse(message: str, *node_ids: str) -> InvalidRunRequest:
    return InvalidRunRequest(message, node_ids=node_ids)


class _Parameters:
    """The parameters of every node for one run, set at most FLOW_MAX_RUN_PARAMETERS times.

    A tweak by display name or by field reaches every node it names, so a short request can
    ask for many of them: they are counted as they are made, and refused past the limit.
    """

    def __init__(self, graph: Graph, limits: Limits):
        self.params = {node_id: dict(node.params) for node_id, node in graph.nodes.items()}
        self.left = limits.max_run_parameters
        self.limit = limits.max_run_parameters
        self.memo: dict = {}  # shared by dynamic_fields: one tweaked template, read once

    def set(self, node: Node, name: str, value: Any) -> None:
        self.left -= 1
        if self.left < 0:
            raise LimitExceeded(f"This run's tweaks and inputs set more than FLOW_MAX_RUN_PARAMETERS "
                                f"({self.limit:,}) parameters (a tweak counts once per node it reaches).")
        self.params[node.id][name] = value

    def dynamic_fields(self, node: Node) -> frozenset[str]:
        return node.component.dynamic_fields(self.params[node.id], self.memo)


def _apply_tweaks(graph: Graph, parameters: _Parameters, tweaks: dict[str, Any]) -> None:
    """By node id, else by display name, else (a plain value) to every node with that field."""
    for key, value in tweaks.items():
        targets: tuple[Node, ...]
        if key in graph.nodes:
            targets = (graph.nodes[key],)
        else:
            targets = graph.by_display_name(key)
        if targets:
            if not isinstance(value, dict):
                raise _refuse(f"Tweak {key!r} must be an object of field values.", *(n.id for n in targets))
            if CODE_FIELD in value:
                node = targets[0]
                raise _refuse(f"Tweak {key!r} targets the 'code' field of node {node.id}: "
                              "components' code cannot be changed.", node.id)
            for node in targets:
                for name, field_value in value.items():
                    parameters.set(node, name, field_value)
            continue
        if key == CODE_FIELD:
            raise _refuse("A tweak cannot change components' 'code' field.")
        if isinstance(value, dict):
            raise _refuse(f"Tweak {key!r} names no node (neither a node id nor a display name).")
        holders = graph.holding(key)
        if not holders:
            raise _refuse(f"Tweak {key!r} names no node and no field of any node.")
        for node in holders:
            parameters.set(node, key, value)


def _check_fields(graph: Graph, parameters: _Parameters) -> None:
    """Every parameter must be a field the node has (template, component-known, or dynamic)."""
    for node in graph.nodes.values():
        dynamic = parameters.dynamic_fields(node)
        unknown = [name for name in parameters.params[node.id] if name not in node.fields and name not in dynamic]
        if unknown:
            raise _refuse(f"Node {node.id} ({node.type}) has no field {listed(sorted(unknown), quote=True)}.", node.id)


class _PromptVariables:
    """Which nodes have an unconnected variable of a given name, built once per run.

    Nodes whose variables are one and the same set (one template given to many nodes) share
    an entry, so the index is as large as the distinct templates, not nodes x variables.
    """

    def __init__(self, graph: Graph, parameters: _Parameters):
        groups: dict[int, tuple[frozenset[str], list[Node]]] = {}
        for node in graph.nodes.values():
            variables = parameters.dynamic_fields(node)
            if variables:
                groups.setdefault(id(variables), (variables, []))[1].append(node)
        self.index: dict[str, list[list[Node]]] = {}
        for variables, nodes in groups.values():
            for name in variables:
                self.index.setdefault(name, []).append(nodes)
        # A variable fed by an edge is connected: each such pair is one edge, so few.
        self.fed = {(node.id, edge.field) for node in graph.nodes.values() for edge in node.inputs}

    def unconnected(self, name: str) -> list[Node]:
        return [node for nodes in self.index.get(name, ()) for node in nodes if (node.id, name) not in self.fed]


def _input_text(key: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (str, int, float, bool)):
        return str(value)
    raise _refuse(f"Input {key!r} must be text.")


def _apply_inputs(graph: Graph, parameters: _Parameters, request: RunRequest) -> None:
    """The run's ``input_value`` goes to the inputs of ``input_type``; the older ``inputs``
    dict by node id, display name, generic key (the flow's single input), or prompt variable.
    An empty value is no value: the node keeps its stored (or tweaked) one."""
    if request.input_value:
        for node in graph.by_role(*_INPUT_ROLES[request.input_type]):
            parameters.set(node, "input_value", request.input_value)
    inputs = graph.by_role("chat_input", "text_input")
    variables: _PromptVariables | None = None
    for key, value in request.inputs.items():
        text = _input_text(key, value)
        if key in graph.nodes and graph.nodes[key].role in _INPUT_ROLES["any"]:
            targets = [graph.nodes[key]]
        elif named := [node for node in graph.by_display_name(key) if node.role in _INPUT_ROLES["any"]]:
            targets = named
        elif key in GENERIC_INPUT_KEYS and len(inputs) == 1:
            targets = inputs
        else:
            if variables is None:
                variables = _PromptVariables(graph, parameters)
            prompts = variables.unconnected(key)
            for node in prompts:
                if text:
                    parameters.set(node, key, text)
            if prompts:
                continue
            if key in GENERIC_INPUT_KEYS and inputs:
                raise _refuse(f"Input {key!r} is ambiguous: this flow has {len(inputs)} inputs "
                              f"({', '.join(node.id for node in inputs[:20])}); name one by node id.")
            raise _refuse(f"Input {key!r} matches no input component (by node id or display name) "
                          "and no unconnected prompt variable.")
        for node in targets:
            if text:  # as with input_value, an empty input leaves the stored (or tweaked) value
                parameters.set(node, "input_value", text)


def _output_nodes(graph: Graph, request: RunRequest) -> list[Node]:
    if request.output_component:
        node = graph.nodes.get(request.output_component)
        if node is None:
            raise _refuse(f"output_component {request.output_component!r} is not a node of this flow.")
        return [node]
    if request.output_type == "debug":
        return list(graph.nodes.values())
    return graph.by_role(*_OUTPUT_ROLES[request.output_type])


def _run_targets(graph: Graph, request: RunRequest, outputs: list[Node]) -> set[str]:
    """The nodes a run must reach: its outputs, and, as Langflow builds every node of a flow, each
    node that feeds no other (a Save File after the Chat Output does its work though no output
    reads it). A run asked for one ``output_component`` computes only what that one needs."""
    targets = {node.id for node in outputs}
    if not request.output_component:
        targets |= graph.sinks
    return targets


async def check_plan(plan: Plan) -> None:
    """Have each needed component check the parameters no edge will replace; raise FlowError.

    Within the run's time budget (a check may look a host up)."""
    budget = plan.context.budget
    budget.check_time()
    deadline = asyncio.timeout(budget.remaining())
    try:
        async with deadline:
            for node in plan.run_order:
                if node.component.check is Component.check:
                    continue  # nothing to check: spare the hot path building the component
                fed = {edge.field for edge in node.inputs}
                for spec in node.tools or ():  # a tool's arguments come from the agent's model
                    fed |= spec.arguments
                own = {name: value for name, value in plan.params[node.id].items() if name not in fed}
                await node.component(node=node, params=own, context=plan.context).check()
    except TimeoutError:
        if deadline.expired():
            raise budget.out_of_time() from None
        raise


def plan_run(graph: Graph, request: RunRequest, *, flow_id: str, limits: Limits | None = None) -> Plan:
    """Check the request against the graph and settle every node's parameters.

    Linear in the graph and the request. The run's budget (``limits``, from the settings by
    default) starts now."""
    budget = RunBudget(limits)
    if request.input_type not in INPUT_TYPES:
        raise _refuse(f"input_type must be one of {', '.join(INPUT_TYPES)}.")
    if request.output_type not in OUTPUT_TYPES:
        raise _refuse(f"output_type must be one of {', '.join(OUTPUT_TYPES)}.")
    parameters = _Parameters(graph, budget.limits)
    _apply_tweaks(graph, parameters, request.tweaks)
    _check_fields(graph, parameters)
    _apply_inputs(graph, parameters, request)
    outputs = _output_nodes(graph, request)
    needed = graph.with_ancestors(_run_targets(graph, request, outputs))
    run_order = [node for node in graph.nodes.values() if node.id in needed]
    context = RunContext(flow_id=flow_id, session_id=request.session_id or flow_id, stream=request.stream,
                         budget=budget)
    return Plan(
        graph=graph,
        params=parameters.params,
        run_order=run_order,
        output_nodes=outputs,
        context=context,
        input_value=request.input_value or "",
    )


async def execute(plan: Plan) -> AsyncGenerator[Event | ResultEvent, None]:
    """Run the planned nodes in dependency order, each edge feeding its target's field (a
    loop's body once per item: ``loops.schedule``).

    Yields the run's events, then ``(RESULT, RunResult)``.
    """
    values: dict[tuple[str, str], Any] = {}
    wanted: dict[str, set[str]] = {}
    for node in plan.run_order:
        for edge in node.inputs:
            wanted.setdefault(edge.source, set()).add(edge.output)
    for loop in plan.graph.loops.values():  # what a loop's body sends back to it
        for edge in loop.feedback:
            wanted.setdefault(edge.source, set()).add(edge.output)
    results = []
    output_ids = {node.id for node in plan.output_nodes}
    budget = plan.context.budget
    for node in loops.schedule(plan, values):
        budget.check_time(node.id)
        params = dict(plan.params[node.id])
        fed: dict[str, list] = {}
        for edge in node.inputs:
            fed.setdefault(edge.field, []).append(values[(edge.source, edge.output)])
        for name, received in fed.items():  # several edges into one field make a list
            params[name] = received[0] if len(received) == 1 else received
        if node.tools is not None:
            # Connected to an agent's tools: not run now, but bound, for the agent's model to call.
            bound = MappingProxyType(params)
            values[(node.id, TOOL_OUTPUT)] = [Tool(spec=spec, node=node, params=bound) for spec in node.tools]
        component = node.component(node=node, params=params, context=plan.context)
        names = [name for name in node.component.outputs if name in wanted.get(node.id, ())]
        default = next(iter(node.component.outputs))
        if node.tools is None and (not names or node.id in output_ids) and default not in names:
            names.insert(0, default)  # an output, or a node that feeds none: it runs for what it does
        for name in names:
            try:
                async with aclosing(output_items(getattr(component, node.component.outputs[name]))) as items:
                    async for item in items:
                        if isinstance(item, Produced):
                            budget.charge_value(as_text(item.value, limit=budget.value_room()), node.id)
                            values[(node.id, name)] = item.value
                        else:
                            if plan.context.stream:
                                budget.charge_answer(_event_size(item), node.id)
                            yield item
            except RecursionError:
                raise ComponentError(f"Node {node.id}: its input is nested too deeply.", node_ids=(node.id,)) from None
            except ValueTooLarge:
                raise budget.too_large(node.id) from None
        end_vertex = "end_vertex", {"build_data": {"id": node.id, "valid": True}}
        if plan.context.stream:
            budget.charge_answer(_event_size(end_vertex), node.id)
        yield end_vertex
        if node.id in output_ids and (node.id, default) in values:
            results.append(NodeResult(node=node, output=default, value=values[(node.id, default)]))
    yield RESULT, RunResult(session_id=plan.context.session_id, input_value=plan.input_value, outputs=results,
                            budget=budget)


def _event_size(event: Event) -> int:
    """Bytes of one streamed event as the stream frames it: ``{"event": name, "data": {...}}``."""
    name, data = event
    return json_size({"event": name, "data": data}) + 2


async def run_to_end(plan: Plan) -> RunResult:
    """Execute without streaming: pass over the events, return the result."""
    async with aclosing(execute(plan)) as events:
        async for name, data in events:
            if name == RESULT:
                assert isinstance(data, RunResult)  # the last item's, and only its
                return data
    raise AssertionError("execute() ended without its result")


def output_text(result: NodeResult) -> str:
    return as_text(result.value)
