"""A flow's graph, checked and ordered once per flow version, then shared by every run.

``compile_graph(data)`` refuses what cannot run (more nodes or edges than the limits, duplicate
edges, unsupported components, dangling edges, an output no supported component produces,
cycles) with InvalidGraph naming the nodes, and returns an immutable Graph: nodes in dependency
order, each with its template values, and indexes by display name and by field. Every step is
linear in nodes + edges (+ the template fields), so a large hostile graph costs no more than
its size; error messages name at most ``MAX_NAMED`` nodes.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any, TypeAlias

from . import components, loops, tools
from .components.base import Component
from .errors import InvalidGraph
from .limits import json_size
from .structure import MAX_NAMED, is_comment_node, listed, structure_errors

# Never a parameter: Langflow keeps each component's Python source here, and we run none.
CODE_FIELD = "code"


@dataclass(frozen=True)
class Edge:
    source: str
    output: str
    target: str
    field: str
    # Back into a Loop node's ``item`` (``field`` is that output): not an input, see ``loops``.
    feeds_back: bool = False


@dataclass(frozen=True)
class VariableField:
    """A template field with ``load_from_db`` naming a global variable; ``secret``: a password field."""

    field: str
    name: str
    secret: bool


# Named before Node: inside Node's body, ``type`` is its field, not the builtin.
ComponentType: TypeAlias = type[Component]


@dataclass(frozen=True)
class Node:
    id: str
    type: str
    display_name: str
    component: ComponentType
    params: Mapping[str, Any]
    fields: frozenset[str]
    inputs: tuple[Edge, ...]
    # The tools it offers when connected to an agent's ``tools`` (then it is not run in turn;
    # possibly none, all disabled in its Actions table); None when it is not.
    tools: tuple[tools.ToolSpec, ...] | None = None
    # Fields whose value Langflow loads from the owner's global variable of that name at run
    # time: left unset in ``params``; the run's planner outside the engine fills them in.
    variables: tuple[VariableField, ...] = ()

    @property
    def role(self) -> str | None:
        return self.component.role


@dataclass(frozen=True)
class Graph:
    nodes: Mapping[str, Node]  # in dependency order
    edges: tuple[Edge, ...]
    # Indexes, so that a run's tweaks and inputs cost one lookup each, not a scan of the nodes.
    display_names: Mapping[str, tuple[Node, ...]] = field(default_factory=dict)
    field_holders: Mapping[str, tuple[Node, ...]] = field(default_factory=dict)
    # About the bytes this graph keeps alive (its parameters' values and its objects), so that a
    # cache of graphs can be bounded in memory, not only in count.
    weight: int = 0
    # Loop node id -> its body and the edges back into it (``loops``).
    loops: Mapping[str, loops.Loop] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"<Graph: {len(self.nodes)} nodes, {len(self.edges)} edges>"

    def by_role(self, *roles: str) -> list[Node]:
        return [node for node in self.nodes.values() if node.role in roles]

    def by_display_name(self, name: str) -> tuple[Node, ...]:
        return self.display_names.get(name, ())

    def holding(self, field_name: str) -> tuple[Node, ...]:
        """The nodes that have ``field_name`` (in their template or as a component-known field)."""
        return self.field_holders.get(field_name, ())

    @cached_property
    def sinks(self) -> frozenset[str]:
        """The nodes that feed no other (a run builds them too, as Langflow does); once per graph,
        which is compiled once per flow version."""
        feeding = {edge.source for edge in self.edges}
        return frozenset(node_id for node_id in self.nodes if node_id not in feeding)

    def with_ancestors(self, node_ids: set[str]) -> set[str]:
        """The nodes whose outputs ``node_ids`` need, themselves included (each edge followed once)."""
        needed, pending = set(), list(node_ids)
        while pending:
            node_id = pending.pop()
            if node_id not in needed:
                needed.add(node_id)
                pending += [edge.source for edge in self.nodes[node_id].inputs]
                if node_id in self.loops:  # a loop runs its body
                    pending += self.loops[node_id].body
        return needed


def _template_params(template: dict) -> dict[str, Any]:
    """Each template field's value. A value Langflow loads from a global variable by name is
    left unset: the name is not the value (``_variable_fields`` keeps the name for the run)."""
    params = {}
    for name, spec in template.items():
        if name == CODE_FIELD or not isinstance(spec, dict):
            continue
        value = spec.get("value")
        if spec.get("load_from_db") and value:
            value = None
        params[name] = value
    return params


def _variable_fields(template: dict) -> tuple[VariableField, ...]:
    """The fields that load a global variable: ``load_from_db`` with a name as the value."""
    return tuple(
        VariableField(field=name, name=field["value"], secret=field.get("password") is True)
        for name, field in template.items()
        if name != CODE_FIELD and isinstance(field, dict) and field.get("load_from_db")
        and isinstance(field.get("value"), str) and field["value"].strip()
    )


def _node_list(data: dict) -> list[dict]:
    return [node for node in data["nodes"] if not is_comment_node(node)]


def _refuse_unsupported(nodes: list[dict]) -> None:
    unsupported = [(node["data"]["type"], node["id"]) for node in nodes
                   if node["data"]["type"] not in components.REGISTRY]
    if unsupported:
        named = listed([f"{kind} (node {node_id})" for kind, node_id in unsupported])
        raise InvalidGraph(f"This flow uses components this server does not support: {named}.",
                           node_ids=tuple(node_id for _, node_id in unsupported[:MAX_NAMED]))


def _edges(data: dict, known: dict[str, dict]) -> list[Edge]:
    edges, problems, bad_nodes = [], [], []
    for raw in data["edges"]:
        target_handle = raw["data"]["targetHandle"]
        field_name = target_handle.get("fieldName")
        edge = Edge(raw["source"], raw["data"]["sourceHandle"]["name"], raw["target"],
                    field_name or target_handle.get("name"), feeds_back=not field_name)
        missing = [node_id for node_id in (edge.source, edge.target) if node_id not in known]
        if missing:
            problems.append(f"{edge.source} -> {edge.target} (no component {', '.join(missing)})")
            bad_nodes += missing
            continue
        if edge.feeds_back and edge.field not in _loop_outputs(components.REGISTRY[known[edge.target]["data"]["type"]]):
            problems.append(f"{edge.source} -> {edge.target} (an edge can come back only into a Loop's item, "
                            f"not into '{edge.field}' of {known[edge.target]['data']['type']})")
            bad_nodes.append(edge.target)
            continue
        source_type = known[edge.source]["data"]["type"]
        if edge.output == tools.TOOL_OUTPUT:
            problem = _tool_edge_problem(edge, source_type, known[edge.target]["data"]["type"])
            if problem:
                problems.append(f"{edge.source} -> {edge.target} ({problem})")
                bad_nodes.append(edge.source)
                continue
        elif edge.output not in components.REGISTRY[source_type].outputs:
            problems.append(f"{edge.source} -> {edge.target} (output '{edge.output}' of {source_type} "
                            "is not supported)")
            bad_nodes.append(edge.source)
            continue
        if edge.field == CODE_FIELD:
            problems.append(f"{edge.source} -> {edge.target} (an edge cannot feed a component's code)")
            bad_nodes.append(edge.target)
            continue
        edges.append(edge)
    if problems:
        raise InvalidGraph("These edges cannot run: " + listed(problems, separator="; ") + ".",
                           node_ids=tuple(dict.fromkeys(bad_nodes))[:MAX_NAMED])
    return edges


def _loop_outputs(component: type[Component]) -> frozenset[str]:
    return getattr(component, "loop_outputs", frozenset())


def _tool_edge_problem(edge: Edge, source_type: str, target_type: str) -> str | None:
    """Why a tool-mode edge cannot run, or None: it must feed a ``tools`` field of a component
    that has one, from a component that can be called as a tool."""
    if not tools.can_be_tool(components.REGISTRY[source_type]):
        return f"{source_type} cannot be used as a tool"
    if edge.field != tools.TOOLS_FIELD or not getattr(components.REGISTRY[target_type], "accepts_tools", False):
        return f"a tool can only feed the '{tools.TOOLS_FIELD}' input of an agent, not '{edge.field}' of {target_type}"
    return None


def _dependency_order(node_ids: list[str], edges: list[Edge]) -> list[str]:
    """Kahn's algorithm, stable in the export's node order; a cycle raises InvalidGraph."""
    waiting = dict.fromkeys(node_ids, 0)
    after = defaultdict(list)
    for edge in edges:
        waiting[edge.target] += 1
        after[edge.source].append(edge.target)
    order = list(_peel(waiting, after))
    if len(order) < len(node_ids):
        on_cycles = _on_cycles({node_id for node_id in node_ids if waiting[node_id] > 0}, edges)
        stuck = [node_id for node_id in node_ids if node_id in on_cycles]
        raise InvalidGraph(f"The flow has a cycle through these nodes: {listed(stuck, quote=False)}.",
                           node_ids=tuple(stuck[:MAX_NAMED]))
    return order


def _on_cycles(stuck: set[str], edges: list[Edge]) -> set[str]:
    """Drop the nodes that are merely downstream of a cycle: peel off, in turn, those that feed
    no other stuck node (Kahn's algorithm backwards, linear in the edges)."""
    feeds = dict.fromkeys(stuck, 0)
    before = defaultdict(list)
    for edge in edges:
        if edge.source in stuck and edge.target in stuck:
            feeds[edge.source] += 1
            before[edge.target].append(edge.source)
    stuck.difference_update(_peel(feeds, before))
    return stuck


def _peel(counts: dict[str, int], next_of: dict[str, list[str]]) -> Iterator[str]:
    """Kahn's algorithm: yield each node once its count is zero (in ``counts``' order at first),
    counting down the nodes ``next_of`` it; nodes on a cycle never reach zero. ``counts`` is used up."""
    ready = deque(node_id for node_id, count in counts.items() if count == 0)
    while ready:
        node_id = ready.popleft()
        yield node_id
        for following in next_of[node_id]:
            counts[following] -= 1
            if counts[following] == 0:
                ready.append(following)


def _index(nodes: list[Node], keys) -> MappingProxyType:
    index: dict[str, list[Node]] = defaultdict(list)
    for node in nodes:
        for key in keys(node):
            index[key].append(node)
    return MappingProxyType({key: tuple(found) for key, found in index.items()})


def compile_graph(data: Any) -> Graph:
    """Check ``data`` and build the Graph every run of this flow version will use."""
    problems = structure_errors(data)
    if problems:
        raise InvalidGraph("The flow's data is malformed: " + listed(problems, separator="; ") + ".")
    raw_nodes = _node_list(data)
    _refuse_unsupported(raw_nodes)
    known = {node["id"]: node for node in raw_nodes}
    edges = _edges(data, known)
    feedback = [edge for edge in edges if edge.feeds_back]
    edges = [edge for edge in edges if not edge.feeds_back]
    found_loops = loops.find_loops(
        {node_id: _loop_outputs(components.REGISTRY[raw["data"]["type"]]) for node_id, raw in known.items()
         if _loop_outputs(components.REGISTRY[raw["data"]["type"]])}, edges, feedback)
    # What a loop's body reads from outside it must be ready before the loop starts.
    ordering = [Edge(source, "", loop_id, "") for source, loop_id in loops.ordering_edges(found_loops, edges)]
    inputs = defaultdict(list)
    as_tools = set()
    for edge in edges:
        inputs[edge.target].append(edge)
        if edge.output == tools.TOOL_OUTPUT:
            as_tools.add(edge.source)
    nodes = {}
    for node_id in _dependency_order(list(known), edges + ordering):
        raw = known[node_id]["data"]
        inner = raw["node"]
        params = _template_params(inner["template"])
        component = components.REGISTRY[raw["type"]]
        nodes[node_id] = Node(
            id=node_id,
            type=raw["type"],
            display_name=inner.get("display_name") if isinstance(inner.get("display_name"), str) else raw["type"],
            component=component,
            params=MappingProxyType(params),
            fields=frozenset(params) | component.extra_fields,
            inputs=tuple(inputs[node_id]),
            tools=tools.tool_specs(known[node_id], component) if node_id in as_tools else None,
            variables=_variable_fields(inner["template"]),
        )
    ordered = list(nodes.values())
    return Graph(
        nodes=MappingProxyType(nodes),
        edges=tuple(edges),
        display_names=_index(ordered, lambda node: (node.display_name,)),
        field_holders=_index(ordered, lambda node: node.fields),
        weight=_weight(ordered, edges),
        loops=MappingProxyType(found_loops),
    )


# Rough sizes of the objects a compiled graph holds beyond its values' text (CPython, 64-bit).
_NODE_BYTES, _EDGE_BYTES, _FIELD_BYTES = 2048, 256, 256


def _weight(nodes: list[Node], edges: list[Edge]) -> int:
    """About the memory the graph keeps alive: its values as JSON would write them, plus its objects."""
    fields = sum(len(node.params) for node in nodes)
    values = sum(json_size(value) for node in nodes for value in node.params.values())
    return len(nodes) * _NODE_BYTES + len(edges) * _EDGE_BYTES + fields * _FIELD_BYTES + values
