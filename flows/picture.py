"""A read-only picture of a flow's graph: boxes and arrows laid out on the server, drawn as SVG.

Layers from left to right (a node one column right of the furthest node feeding it: the longest
path, in one linear pass over Kahn's order; nodes on a cycle follow in the export's order), rows
ordered by where their inputs sit (one barycenter sweep). The template draws it; Django escapes
every label. Reads the raw ``flow.data``, so a stored flow this server cannot run is drawn too,
its unsupported components marked. No script, no style attribute: the CSP allows neither.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

from .catalog import node_label
from .engine.components import REGISTRY
from .engine.structure import is_comment_node

NODE_WIDTH = 184
NODE_HEIGHT = 54
COLUMN_GAP = 64
ROW_GAP = 22
PADDING = 12
LABEL_CHARS = 24
SCALABLE_COLUMNS = 3
MAX_NODES = 150  # past this a picture helps nobody: the page lists the components instead


@dataclass(frozen=True)
class PictureNode:
    id: str
    label: str
    short_label: str
    type: str
    short_type: str
    supported: bool
    x: int
    y: int
    width: int = NODE_WIDTH
    height: int = NODE_HEIGHT

    @property
    def label_x(self) -> int:
        return self.x + 12

    @property
    def label_y(self) -> int:
        return self.y + 23

    @property
    def type_y(self) -> int:
        return self.y + 42


@dataclass(frozen=True)
class PictureEdge:
    source: str
    target: str
    source_label: str
    target_label: str
    path: str


@dataclass(frozen=True)
class Picture:
    nodes: list[PictureNode]
    edges: list[PictureEdge]
    width: int
    height: int
    columns: int = 1

    @property
    def is_scalable(self) -> bool:
        """Narrow enough to shrink into a small card and stay legible; a wider one scrolls instead."""
        return self.columns <= SCALABLE_COLUMNS

    @property
    def summary(self) -> str:
        count, links = len(self.nodes), len(self.edges)
        return f"{count} component{'s' if count != 1 else ''} and {links} connection{'s' if links != 1 else ''}"


def _short(text: str, limit: int = LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _graph(data: Any) -> tuple[list[dict], list[tuple[str, str]]]:
    nodes_in = data.get("nodes") if isinstance(data, dict) else None
    edges_in = data.get("edges") if isinstance(data, dict) else None
    nodes = [node for node in nodes_in or [] if isinstance(node, dict) and isinstance(node.get("id"), str)
             and not is_comment_node(node)] if isinstance(nodes_in, list) else []
    known = {node["id"] for node in nodes}
    edges = []
    seen = set()
    for edge in edges_in if isinstance(edges_in, list) else []:
        if not isinstance(edge, dict):
            continue
        source, target = edge.get("source"), edge.get("target")
        if not isinstance(source, str) or not isinstance(target, str):
            continue
        pair = (source, target)
        if source in known and target in known and source != target and pair not in seen:
            seen.add(pair)
            edges.append(pair)
    return nodes, edges


def _layers(ids: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    incoming: dict[str, list[str]] = defaultdict(list)
    outgoing: dict[str, list[str]] = defaultdict(list)
    waiting = dict.fromkeys(ids, 0)
    for source, target in edges:
        incoming[target].append(source)
        outgoing[source].append(target)
        waiting[target] += 1
    ready = deque(node_id for node_id in ids if waiting[node_id] == 0)
    order = []
    while ready:
        node_id = ready.popleft()
        order.append(node_id)
        for following in outgoing[node_id]:
            waiting[following] -= 1
            if waiting[following] == 0:
                ready.append(following)
    placed = set(order)
    order += [node_id for node_id in ids if node_id not in placed]  # on or after a cycle
    layer: dict[str, int] = {}
    for node_id in order:
        layer[node_id] = max((layer[source] + 1 for source in incoming[node_id] if source in layer), default=0)
    return layer


def _rows(ids: list[str], layer: dict[str, int], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Each node's row in its column: by the mean row of the nodes feeding it, else the export's order."""
    incoming: dict[str, list[str]] = defaultdict(list)
    for source, target in edges:
        incoming[target].append(source)
    columns: dict[int, list[str]] = defaultdict(list)
    for node_id in ids:
        columns[layer[node_id]].append(node_id)
    row: dict[str, int] = {}
    for column in sorted(columns):
        members = columns[column]

        def weight(node_id: str, index: int) -> tuple[float, int]:
            rows = [row[source] for source in incoming[node_id] if source in row]
            return (sum(rows) / len(rows) if rows else float(index), index)

        ordered = sorted(members, key=lambda node_id: weight(node_id, members.index(node_id)))
        for index, node_id in enumerate(ordered):
            row[node_id] = index
    return row


def flow_picture(data: Any) -> Picture | None:
    """Lay out ``data``'s graph, or None when it has no components or more than MAX_NODES."""
    nodes, edges = _graph(data)
    if not nodes or len(nodes) > MAX_NODES:
        return None
    ids = list(dict.fromkeys(node["id"] for node in nodes))
    by_id = {node["id"]: node for node in nodes}
    layer = _layers(ids, edges)
    row = _rows(ids, layer, edges)
    tallest = max(row.values()) + 1
    height_of = {column: max(row[node_id] for node_id in ids if layer[node_id] == column) + 1 for column in set(layer.values())}
    pictured = {}
    for node_id in ids:
        column = layer[node_id]
        offset = (tallest - height_of[column]) * (NODE_HEIGHT + ROW_GAP) // 2  # centre short columns
        node = by_id[node_id]
        data_type = node.get("data", {}).get("type") if isinstance(node.get("data"), dict) else None
        data_type = data_type if isinstance(data_type, str) else ""
        label = node_label(node)
        pictured[node_id] = PictureNode(
            id=node_id, label=label, short_label=_short(label), type=data_type or node_id,
            short_type=_short(data_type or node_id, LABEL_CHARS + 4), supported=data_type in REGISTRY,
            x=PADDING + column * (NODE_WIDTH + COLUMN_GAP), y=PADDING + offset + row[node_id] * (NODE_HEIGHT + ROW_GAP))
    picture_edges = []
    for source, target in edges:
        start, end = pictured[source], pictured[target]
        x1, y1 = start.x + NODE_WIDTH, start.y + NODE_HEIGHT // 2
        x2, y2 = end.x - 6, end.y + NODE_HEIGHT // 2  # the arrowhead ends at the box
        bend = max(30, abs(x2 - x1) // 2)
        path = f"M{x1} {y1} C{x1 + bend} {y1} {x2 - bend} {y2} {x2} {y2}"
        picture_edges.append(PictureEdge(source, target, start.label, end.label, path))
    columns = max(layer.values()) + 1
    return Picture(
        nodes=[pictured[node_id] for node_id in ids], edges=picture_edges, columns=columns,
        width=2 * PADDING + columns * NODE_WIDTH + (columns - 1) * COLUMN_GAP,
        height=2 * PADDING + tallest * NODE_HEIGHT + (tallest - 1) * ROW_GAP,
    )
