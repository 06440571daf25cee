"""Loops: Langflow's Loop component runs the nodes after its ``item`` output once per item.

In the export, a loop is the one cycle a flow may have: the Loop node's ``item`` output feeds
its body, and an edge from the body comes back into the Loop node's ``item`` (a target handle
that names the output, with no ``fieldName``). ``graph`` keeps that edge aside (``feeds_back``),
so the graph stays acyclic, and records each loop here when the flow is compiled:

- the **body** is every node the ``item`` output reaches; it must contain the node that feeds
  back (when there is one), and no other loop (nested loops are refused);
- whatever else the body reads must be ready before the loop starts, so the dependency order
  gets an edge from each such node to the Loop node.

When the flow runs, ``schedule`` hands ``execute`` its nodes in order, except that at a Loop
node it hands over the Loop node, then its body, then the Loop node again, once per item: at
each visit the Loop node's ``item`` output is the next item, and, after the last, its ``done``
output is the DataFrame of what the body fed back (one row per item). A loop iterates over at
most FLOW_MAX_ITERATIONS items (more is refused before the first), and every node visit is
within the run's time budget and counts against its output limits like any other.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import InvalidGraph
from .messages import Message
from .structure import MAX_NAMED, listed

if TYPE_CHECKING:
    from .graph import Edge, Node
    from .run import Plan

# The parameter through which ``schedule`` hands a Loop node its state (never a template field:
# a tweak cannot set it, the fields of a run are checked before it is added).
LOOP_STATE = "__loop_state__"


@dataclass(frozen=True)
class Loop:
    node_id: str
    body: frozenset[str]
    feedback: tuple[Edge, ...]


def find_loops(loop_nodes: dict[str, frozenset[str]], edges: list[Edge], feedback: list[Edge]) -> dict[str, Loop]:
    """Each loop's body, from its loop outputs (``loop_nodes``: node id -> loop output names)
    through ``edges`` (not the ``feedback`` ones); raise InvalidGraph for what cannot run."""
    after = defaultdict(list)
    for edge in edges:
        after[edge.source].append(edge)
    back = defaultdict(list)
    for edge in feedback:
        back[edge.target].append(edge)
    loops = {}
    for loop_id, loop_outputs in loop_nodes.items():
        body: set[str] = set()
        pending = [edge.target for edge in after[loop_id] if edge.output in loop_outputs]
        while pending:
            node_id = pending.pop()
            if node_id in body or node_id == loop_id:
                continue  # reaching the loop itself by a plain edge is a cycle: the order says so
            body.add(node_id)
            pending += [edge.target for edge in after[node_id]]
        nested = [node_id for node_id in body if node_id in loop_nodes]
        if nested:
            raise InvalidGraph(f"Loop {loop_id} has another loop in its body ({listed(sorted(nested))}): "
                               "nested loops are not supported.", node_ids=(loop_id, *sorted(nested)[:MAX_NAMED]))
        outside = [edge.source for edge in back[loop_id] if edge.source not in body]
        if outside:
            raise InvalidGraph(f"Loop {loop_id}: what comes back into its item input must come from a node its "
                               f"item output reaches, not from {listed(outside)}.", node_ids=(loop_id, *outside))
        loops[loop_id] = Loop(node_id=loop_id, body=frozenset(body), feedback=tuple(back[loop_id]))
    return loops


def ordering_edges(loops: dict[str, Loop], edges: list[Edge]) -> list[tuple[str, str]]:
    """``(source, loop)`` for every node outside a loop's body that its body reads: it must run
    before the loop starts."""
    needs = []
    for edge in edges:
        for loop in loops.values():
            if edge.target in loop.body and edge.source not in loop.body and edge.source != loop.node_id:
                needs.append((edge.source, loop.node_id))
    return needs


# --- Running ---------------------------------------------------------------------------------------

def as_row(value: Any) -> dict:
    """What the body fed back, as one DataFrame row."""
    if isinstance(value, Message):
        return {"text": value.text, "sender": value.sender, "sender_name": value.sender_name}
    if isinstance(value, dict):
        return value
    return {"text": "" if value is None else value if isinstance(value, str) else str(value)}


@dataclass
class LoopState:
    """One loop's progress in one run, shared by the scheduler and the Loop component."""

    items: list | None = None  # set at the Loop node's first visit, from its ``data`` input
    index: int = 0
    results: list[dict] = field(default_factory=list)

    def start(self, items: list) -> None:
        self.items = items

    @property
    def finished(self) -> bool:
        return self.items is not None and self.index >= len(self.items)

    @property
    def current(self) -> Any:
        return None if self.items is None or self.finished else self.items[self.index]

    def collect(self, fed_back: list[Any]) -> None:
        """End an iteration with what the body fed back (the item itself when nothing does)."""
        if not fed_back:
            fed_back = [self.current]
        for value in fed_back:
            self.results.append(as_row(value))
        self.index += 1


def schedule(plan: Plan, values: dict[tuple[str, str], Any]) -> Iterator[Node]:
    """The nodes to run, in order: a loop's body comes after its Loop node, once per item, the
    Loop node visited again after each pass (``values`` holds what the body produced)."""
    loops = plan.graph.loops
    if not loops:
        yield from plan.run_order
        return
    done: set[str] = set()
    for node in plan.run_order:
        if node.id in done:
            continue
        loop = loops.get(node.id)
        if loop is None:
            yield node
            continue
        state = LoopState()
        plan.params[node.id][LOOP_STATE] = state
        body = [member for member in plan.run_order if member.id in loop.body]
        done.update(loop.body)
        yield node
        if state.items is None:
            continue  # neither of its outputs was asked for: nothing to iterate
        while not state.finished:
            yield from body
            state.collect([values.get((edge.source, edge.output)) for edge in loop.feedback])
            yield node
