"""Check the shape of a flow's ``data`` (Langflow's ``nodes`` and ``edges``) before it is stored.

The shape and the size: at most FLOW_MAX_NODES nodes and FLOW_MAX_EDGES edges (counted before
anything else is read), and no edge twice. Whether a stored flow can run (supported components,
no cycle, no dangling edge) is decided when it is compiled, so work in progress can be saved,
as in Langflow. Linear in the data; the list of problems names at most ``MAX_NAMED``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, TypeGuard

from .limits import Limits

COMMENT_NODE_TYPES = frozenset({"note", "noteNode"})
# Error messages list this many problems or nodes at most, then say how many more there are.
MAX_NAMED = 20


def listed(items: list[str], *, separator: str = ", ", quote: bool = False) -> str:
    """The first MAX_NAMED items joined, and how many more there are."""
    shown = [repr(item) if quote else item for item in items[:MAX_NAMED]]
    more = len(items) - MAX_NAMED
    return separator.join(shown) + (f"{separator}and {more:,} more" if more > 0 else "")


def is_comment_node(node: dict) -> bool:
    """Tell a sticky note (a comment in the canvas) from a component.

    Langflow exports notes with the React Flow type ``noteNode``; older ones have
    ``data.type`` set to ``note`` or missing altogether (``undefined-...`` ids).
    """
    data = node.get("data")
    if not isinstance(data, dict):
        data = {}
    return node.get("type") in COMMENT_NODE_TYPES or data.get("type") in COMMENT_NODE_TYPES


def empty_flow_data() -> dict:
    return {"nodes": [], "edges": []}


def _is_text(value: Any) -> TypeGuard[str]:
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
    limits = Limits.from_settings()
    if len(nodes) > limits.max_nodes:
        errors.append(f"the flow has {len(nodes):,} nodes, more than FLOW_MAX_NODES ({limits.max_nodes:,})")
    if len(edges) > limits.max_edges:
        errors.append(f"the flow has {len(edges):,} edges, more than FLOW_MAX_EDGES ({limits.max_edges:,})")
    if errors:
        return errors
    seen: set[str] = set()
    for index, node in enumerate(nodes):
        errors += _node_errors(index, node, seen)
    links: dict[tuple[str, str, str, str], int] = {}
    for index, edge in enumerate(edges):
        problems = _edge_errors(index, edge)
        errors += problems
        if not problems:
            target_handle = edge["data"]["targetHandle"]
            link = (edge["source"], edge["data"]["sourceHandle"]["name"], edge["target"],
                    target_handle.get("fieldName") or "output " + target_handle["name"])
            links[link] = links.get(link, 0) + 1
    for (source, output, target, field), count in links.items():
        if count > 1:
            errors.append(f"edge {source} -> {target} (output '{output}' into field '{field}') "
                          f"appears {count} times: a value can reach a field only once")
    if len(errors) > MAX_NAMED:
        errors = errors[:MAX_NAMED] + [f"and {len(errors) - MAX_NAMED:,} more problems"]
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
    # An edge back into a Loop names the loop's output ("name") instead of a field.
    if not isinstance(target_handle, dict) or not (_is_text(target_handle.get("fieldName"))
                                                   or _is_text(target_handle.get("name"))):
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
