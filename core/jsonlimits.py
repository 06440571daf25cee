"""Bounds on JSON that every request body and stored document keeps to.

Python's own recursion limit (about 1,000 frames, shared with Django's stack) is the only bound
``json.loads`` knows: a document nested a little less deep parses, then fails with a
RecursionError wherever it is next walked (saved, validated, rendered). Real Langflow exports
are nested about 15 levels deep; ``MAX_JSON_DEPTH`` leaves room for them and stays far below
anything that could exhaust the stack.
"""

from __future__ import annotations

from typing import Any

MAX_JSON_DEPTH = 64
TOO_DEEP = f"it is nested more than {MAX_JSON_DEPTH} levels deep"


def nesting_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether lists and objects in ``value`` are nested more than ``limit`` deep (``[[1]]`` is 2).

    Level by level, without recursion: linear in the number of values, whatever their depth.
    """
    level = [value] if isinstance(value, (dict, list)) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        level = [
            child
            for container in level
            for child in (container.values() if isinstance(container, dict) else container)
            if isinstance(child, (dict, list))
        ]
    return False
