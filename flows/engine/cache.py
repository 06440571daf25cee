"""Compiled graphs kept in this process, one per flow version, so a run recomputes nothing."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from .errors import InvalidGraph
from .graph import Graph


class GraphCache:
    """A small LRU of compiled graphs (or of the InvalidGraph a version raises), thread-safe."""

    def __init__(self, size: int):
        self.size = size
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
        """Keep ``entry`` (a graph compiled beforehand, or the InvalidGraph it raised) for ``key``."""
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._entries

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
