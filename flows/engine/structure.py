"""Check the shape of a flow's ``data`` (Langflow's ``nodes`` and ``edges``) before it is stored.

Only the shape: whether a stored flow can run (supported components, no cycle, no dangling
edge) is decided when it is run, so work in progress can be saved, as in Langflow.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

COMMENT_NODE_TYPES = frozenset({"note", "noteNode"})


def is_comment_node(node: dict) -> bool:
    """Tell a sticky note (a comment in the canvas) from a component.

    Langflow exports notes with the React Flow type ``noteNode``; older ones have
    ``data.type`` set to ``note`` or missing altogether (``undefined-...`` ids).
    """
    data = node.get("data") if isinstance(node.get("data"), dict) else {}
    return node.get("type") in COMMENT_NODE_TYPES or data.get("type") in COMMENT_NODE_TYPES


def empty_flow_data() -> dict:
    return {"nodes": [], "edges": []}


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def structure_errors(data: Any) -> list[str]:
    """Return every problem with the shape of ``data``, as readable lines; empty when it is fine."""
    if not isinstance(data, dict):
        return ["must be an object with 'nodes' and 'edges' lists"]
    errors = []
    nodes, edges = data.get("nodes"), data.get("edges")
    if not isinstance(nodes, list):
        errors.append("'nodes' must be a list")
        nodes = []
    if not isinstance(edges, list):
        errors.append("'edges' must be a list")
        edges = []
    seen: set[str] = set()
    for index, node in enumerate(nodes):
        errors += _node_errors(index, node, seen)
    for index, edge in enumerate(edges):
        errors += _edge_errors(index, edge)
    return errors


def _node_errors(index: int, node: Any, seen: set[str]) -> list[str]:
    where = f"nodes[{index}]"
    if not isinstance(node, dict):
        return [f"{where} must be an object"]
    node_id = node.get("id")
    if not _is_text(node_id):
        return [f"{where}.id must be a non-empty string"]
    where = f"node {node_id}"
    if node_id in seen:
        return [f"{where}: the id is used by more than one node"]
    seen.add(node_id)
    data = node.get("data")
    if not isinstance(data, dict):
        return [f"{where}: 'data' must be an object"]
    if is_comment_node(node):
        return []
    if not _is_text(data.get("type")):
        return [f"{where}: 'data.type' must name the component"]
    inner = data.get("node")
    if not isinstance(inner, dict) or not isinstance(inner.get("template"), dict):
        return [f"{where}: 'data.node.template' must be an object"]
    return []


def _edge_errors(index: int, edge: Any) -> list[str]:
    where = f"edges[{index}]"
    if not isinstance(edge, dict):
        return [f"{where} must be an object"]
    if not _is_text(edge.get("source")) or not _is_text(edge.get("target")):
        return [f"{where}: 'source' and 'target' must be node ids"]
    where = f"edge {edge['source']} -> {edge['target']}"
    data = edge.get("data")
    source_handle = data.get("sourceHandle") if isinstance(data, dict) else None
    target_handle = data.get("targetHandle") if isinstance(data, dict) else None
    if not isinstance(source_handle, dict) or not _is_text(source_handle.get("name")):
        return [f"{where}: 'data.sourceHandle.name' must name the source's output"]
    if not isinstance(target_handle, dict) or not _is_text(target_handle.get("fieldName")):
        return [f"{where}: 'data.targetHandle.fieldName' must name the target's field"]
    return []


# Escapes that decode to text no database or UTF-8 encoder accepts: NUL and lone surrogates.
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def _unstorable_text(value: Any) -> bool:
    if isinstance(value, str):
        if "\x00" in value:
            return True
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_unstorable_text(key) or _unstorable_text(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_unstorable_text(item) for item in value)
    return False


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise ValueError(f"{text} is too large a number")
    return number


def load_json(raw: bytes | str) -> Any:
    """Parse JSON that can be stored and echoed safely; raise ValueError with a short reason.

    Refuses what ``json.loads`` lets through but would fail later: NaN, Infinity and numbers
    too large for a float, NUL
    characters and lone surrogates (PostgreSQL and UTF-8 refuse them), absurd nesting.
    """
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValueError("it is not UTF-8 text") from None
    try:
        value = json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)
        if _SUSPECT_ESCAPE.search(raw) and _unstorable_text(value):
            raise ValueError("it contains a NUL character or a lone surrogate")
    except RecursionError:
        raise ValueError("it is nested too deeply") from None
    return value
