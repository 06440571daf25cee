"""Compiled graphs kept in this process, one per flow version, so a run recomputes nothing.

Bounded in count and in memory: a graph weighs about the bytes it keeps alive (``Graph.weight``),
so a few hundred large flows cannot fill a worker's memory.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from .errors import InvalidGraph
from .graph import Graph


def _weight(entry: Graph | InvalidGraph) -> int:
    return entry.weight if isinstance(entry, Graph) else 256 + len(str(entry))


class GraphCache:
    """A small LRU of compiled graphs (or of the InvalidGraph a version raises), thread-safe:
    at most ``size`` entries weighing ``max_bytes`` together (a heavier graph is not kept)."""

    def __init__(self, size: int, max_bytes: int | None = None):
        self.size = size
        self.max_bytes = max_bytes
        self.weight = 0
        self._entries: OrderedDict[Hashable, Graph | InvalidGraph] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], Graph]) -> Graph:
        """Return the graph for ``key``, building it with ``build()`` the first time."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
        if entry is None:
            try:
                entry = build()
            except InvalidGraph as error:
                entry = error
            self.put(key, entry)
        if isinstance(entry, InvalidGraph):
            raise InvalidGraph(str(entry), node_ids=entry.node_ids)
        return entry

    def put(self, key: Hashable, entry: Graph | InvalidGraph) -> None:
        """Keep ``entry`` (a graph compiled beforehand, or the InvalidGraph it raised) for ``key``,
        forgetting the least recently used entries to stay within the bounds."""
        weight = _weight(entry)
        if self.max_bytes is not None and weight > self.max_bytes:
            return  # compiled again when next needed: linear, and never held
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self.weight -= _weight(previous)
            self._entries[key] = entry
            self.weight += weight
            while len(self._entries) > self.size or (self.max_bytes is not None and self.weight > self.max_bytes):
                _, dropped = self._entries.popitem(last=False)
                self.weight -= _weight(dropped)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.weight = 0
