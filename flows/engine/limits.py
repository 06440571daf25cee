"""The bounds that every flow and every run keep to, so that no request costs more than its size.

A run executes on the worker's event loop: a step that took a second would stall every run and
stream of that worker. So each step is linear in what it reads, and what it may build is capped
before it is built (never a huge string built and then measured). The settings:

- ``FLOW_MAX_NODES``, ``FLOW_MAX_EDGES``: a flow's graph, checked when it is stored and compiled.
- ``FLOW_MAX_RUN_PARAMETERS``: the parameters one run's tweaks and inputs may set (a tweak that
  reaches several nodes counts once per node).
- ``FLOW_MAX_VALUE_BYTES``: any one value the engine builds: a node's output, a rendered
  template, the texts of several edges joined into one field.
- ``FLOW_MAX_ANSWER_BYTES``: a run's whole output: the texts of all its nodes' values together,
  and, separately, the answer as sent (the JSON body, or a stream's events together).
- ``FLOW_RUN_TIME_BUDGET``: seconds from the run's plan to its answer, model calls included.

Sizes are bytes of UTF-8 (JSON escapes included for the answer).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from .errors import FlowError

# Strings are measured this many characters at a time, so that measuring never copies much.
_CHUNK = 1 << 16
_json_string = json.encoder.encode_basestring  # the ensure_ascii=False one, in C
# Bytes JSON writes for a character beyond its UTF-8 bytes: one more for '"', '\\' and the short
# escapes (\n, \t...), five more for other control characters (\u00XX), three more for U+2028
# and U+2029, which DRF's renderer escapes (\u2028, six bytes for three).
_SHORT_ESCAPES = b'"\\\b\f\n\r\t'
_ESCAPED = bytes(range(0x20)) + b'"\\'
_LINE_SEPARATORS = (b"\xe2\x80\xa8", b"\xe2\x80\xa9")


class LimitExceeded(FlowError):
    """A flow or a run went past one of the limits above; the message names the setting (and the node)."""


class ValueTooLarge(Exception):
    """Raised by the pure text helpers (``messages``) before they build a text larger than ``limit``;
    the engine turns it into LimitExceeded naming the node."""

    def __init__(self, limit: int):
        super().__init__(f"the text would be larger than {limit:,} bytes")
        self.limit = limit


@dataclass(frozen=True)
class Limits:
    max_nodes: int
    max_edges: int
    max_run_parameters: int
    max_value_bytes: int
    max_answer_bytes: int
    run_time_budget: float

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(
            max_nodes=settings.FLOW_MAX_NODES,
            max_edges=settings.FLOW_MAX_EDGES,
            max_run_parameters=settings.FLOW_MAX_RUN_PARAMETERS,
            max_value_bytes=settings.FLOW_MAX_VALUE_BYTES,
            max_answer_bytes=settings.FLOW_MAX_ANSWER_BYTES,
            run_time_budget=settings.FLOW_RUN_TIME_BUDGET,
        )


# --- Measuring without building ------------------------------------------------------------------

def text_size(text: str) -> int:
    """UTF-8 bytes of ``text`` (lone surrogates count three, as Python stores them)."""
    if text.isascii():
        return len(text)
    return sum(len(text[start:start + _CHUNK].encode("utf-8", "surrogatepass"))
               for start in range(0, len(text), _CHUNK))


def json_string_size(text: str) -> int:
    """Bytes of ``text`` as a JSON string, quotes and escapes included (``ensure_ascii=False``)."""
    if len(text) <= _CHUNK and text.isascii():
        # The json module's own (C) string encoder; in ASCII each character is one byte.
        return len(_json_string(text))
    size = 2
    for start in range(0, len(text), _CHUNK):
        raw = text[start:start + _CHUNK].encode("utf-8", "surrogatepass")
        escaped = len(raw) - len(raw.translate(None, _ESCAPED))
        short = len(raw) - len(raw.translate(None, _SHORT_ESCAPES)) if escaped else 0
        separators = sum(raw.count(mark) for mark in _LINE_SEPARATORS) if not raw.isascii() else 0
        size += len(raw) + short + 5 * (escaped - short) + 3 * separators
    return size


def json_size(value: Any) -> int:
    """Bytes of ``value`` as JSON, at least what ``json.dumps(value, ensure_ascii=False)`` writes
    (separators counted as ", " and ": "), computed without writing it. Each string is measured
    once however often it appears; anything that is not JSON counts as its ``str()``."""
    measured: dict[int, int] = {}
    size = 0
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            key = id(item)
            if key not in measured:
                measured[key] = json_string_size(item)
            size += measured[key]
        elif isinstance(item, dict):
            size += 2 + 4 * len(item)  # braces, and ": " plus ", " per entry (one too many: harmless)
            for key, child in item.items():
                pending.append(key if isinstance(key, str) else str(key))
                pending.append(child)
        elif isinstance(item, (list, tuple)):
            size += 2 + 2 * len(item)
            pending.extend(item)
        elif item is None or isinstance(item, bool):
            size += 5
        elif isinstance(item, int):
            size += len(str(item))
        elif isinstance(item, float):
            size += len(repr(item)) if math.isfinite(item) else 9
        else:
            pending.append(str(item))
    return size


# --- One run's budget ------------------------------------------------------------------------------

class RunBudget:
    """What one run may still build, send and spend in time; shared by all its nodes.

    ``produced`` counts the UTF-8 bytes of every node's output, ``answered`` the answer's bytes
    (each streamed event as it goes, then the final body); both stop at FLOW_MAX_ANSWER_BYTES.
    The clock starts when the run is planned.
    """

    def __init__(self, limits: Limits | None = None):
        self.limits = limits or Limits.from_settings()
        self.deadline = time.monotonic() + self.limits.run_time_budget
        self.produced = 0
        self.answered = 0

    # Size ----------------------------------------------------------------------------------------

    def value_room(self) -> int:
        """The largest value a node may build now."""
        return max(0, min(self.limits.max_value_bytes, self.limits.max_answer_bytes - self.produced))

    def too_large(self, node_id: str | None = None) -> LimitExceeded:
        """The error for a value that would not fit ``value_room()``, naming the limit that binds."""
        where = f"Node {node_id}: its output" if node_id else "A value"
        if self.limits.max_value_bytes <= self.limits.max_answer_bytes - self.produced:
            message = (f"{where} would be larger than FLOW_MAX_VALUE_BYTES "
                       f"({self.limits.max_value_bytes:,} bytes).")
        else:
            message = (f"{where} would take the run's output past FLOW_MAX_ANSWER_BYTES "
                       f"({self.limits.max_answer_bytes:,} bytes).")
        return LimitExceeded(message, node_ids=(node_id,) if node_id else ())

    def charge_value(self, text: str, node_id: str) -> None:
        """Count a node's output (already within ``value_room()`` when the node built it)."""
        size = text_size(text)
        if size > self.value_room():
            raise self.too_large(node_id)
        self.produced += size

    def charge_answer(self, size: int, node_id: str | None = None) -> None:
        """Count ``size`` bytes about to be sent; refuse them past FLOW_MAX_ANSWER_BYTES."""
        if self.answered + size > self.limits.max_answer_bytes:
            where = f" (at node {node_id})" if node_id else ""
            raise LimitExceeded(f"The run's answer would be larger than FLOW_MAX_ANSWER_BYTES "
                                f"({self.limits.max_answer_bytes:,} bytes){where}.",
                                node_ids=(node_id,) if node_id else ())
        self.answered += size

    # Time ----------------------------------------------------------------------------------------

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def out_of_time(self, node_id: str | None = None) -> LimitExceeded:
        where = f" (stopped at node {node_id})" if node_id else ""
        return LimitExceeded(f"The run took longer than FLOW_RUN_TIME_BUDGET "
                             f"({self.limits.run_time_budget:g} s){where}.",
                             node_ids=(node_id,) if node_id else ())

    def check_time(self, node_id: str | None = None) -> None:
        if self.expired():
            raise self.out_of_time(node_id)
