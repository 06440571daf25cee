"""Split Text: cut texts into chunks of at most ``chunk_size`` characters that overlap by up to
``chunk_overlap``, as Langflow's (LangChain's CharacterTextSplitter) does.

The text is cut at ``separator`` (``\\n`` written as two characters means a newline; empty means
between every character), the pieces are merged greedily into chunks, and each new chunk starts
with the end of the previous one, up to ``chunk_overlap`` characters. A piece longer than
``chunk_size`` is a chunk of its own. Chunks are stripped; empty ones are dropped.

Bounded: the pieces are read one at a time (never a list of them all), and the chunks, rows
together, are measured as they are made against the run's value limit, so a tiny chunk size or
a large overlap is refused at that limit instead of building millions of rows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

from ..limits import json_size
from ..messages import Message
from .base import Component, register

KEEP_SEPARATOR = {"false": None, "": None, "true": "start", "start": "start", "end": "end"}
_ESCAPES = {"\\n": "\n", "\\t": "\t", "\\r": "\r"}
MAX_CHUNK_SIZE = 10**9


def _unescape(separator: str) -> str:
    for written, meant in _ESCAPES.items():
        separator = separator.replace(written, meant)
    return separator


def pieces(text: str, separator: str, keep: str | None) -> Iterator[str]:
    """The non-empty pieces of ``text`` between separators; with ``keep`` "start" each piece
    after the first begins with its separator, with "end" each piece but the last ends with it."""
    if not separator:
        yield from text
        return
    width = len(separator)
    start = 0
    carried = ""  # "start": the separator that opens the next piece
    while (found := text.find(separator, start)) >= 0:
        if keep == "end":
            piece = text[start:found + width]
        else:
            piece = carried + text[start:found]
            carried = separator if keep == "start" else ""
        if piece:
            yield piece
        start = found + width
    piece = carried + text[start:]
    if piece:
        yield piece


def merge(parts: Iterator[str], separator: str, size: int, overlap: int) -> Iterator[str]:
    """LangChain's ``_merge_splits``, in time linear in what it yields (a deque, not list slices)."""
    width = len(separator)
    current: deque[str] = deque()
    total = 0
    for part in parts:
        length = len(part)
        if current and total + length + width > size:
            chunk = separator.join(current).strip()
            if chunk:
                yield chunk
            while current and (total > overlap or total + length + width > size):
                total -= len(current[0]) + (width if len(current) > 1 else 0)
                current.popleft()
        current.append(part)
        total += length + (width if len(current) > 1 else 0)
    if current:
        chunk = separator.join(current).strip()
        if chunk:
            yield chunk


@register("SplitText")
class SplitText(Component):
    outputs = {"dataframe": "split_text", "chunks": "split_text"}

    def _settings(self) -> tuple[int, int, str, str | None]:
        size = int(self.number("chunk_size", 1000, minimum=1, maximum=MAX_CHUNK_SIZE, integer=True) or 1)
        overlap = int(self.number("chunk_overlap", 200, minimum=0, maximum=MAX_CHUNK_SIZE, integer=True) or 0)
        if overlap > size:
            raise self.fail("chunk_overlap", f"({overlap}) must not be larger than chunk_size ({size})")
        keep = self.params.get("keep_separator")
        keep = str(keep).strip().lower() if keep is not None else "false"
        if keep not in KEEP_SEPARATOR:
            raise self.fail("keep_separator", "must be False, True, Start or End")
        separator = self.params.get("separator")
        separator = "\n" if separator is None else _unescape(self.text("separator"))
        return size, overlap, separator, KEEP_SEPARATOR[keep]

    def _documents(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Each input's text and the other fields it carries (kept on its chunks)."""
        text_key = self.text("text_key", "text") or "text"
        value = self.params.get("data_inputs")
        items = value if isinstance(value, list) else [value]
        for item in items:
            if item is None:
                continue
            if isinstance(item, Message):
                yield item.text, {}
            elif isinstance(item, str):
                yield item, {}
            elif isinstance(item, dict):
                inner = item.get("data")
                record = inner if isinstance(inner, dict) else item
                text = record.get(text_key)
                if not isinstance(text, str):
                    raise self.fail("text_key", f"names {text_key!r}, which the input has no text in")
                yield text, {key: field for key, field in record.items() if key != text_key}
            else:
                raise self.fail("data_inputs", "must be text, a Message, Data or a DataFrame")

    def split_text(self) -> list[dict[str, Any]]:
        """The chunks as a DataFrame: one record per chunk, its text under ``text`` (with the
        input's other fields, unless ``clean_output``)."""
        size, overlap, separator, keep = self._settings()
        joiner = "" if keep else separator
        clean = self.boolean("clean_output")
        room = self.value_room()
        used = 2
        rows = []
        for text, metadata in self._documents():
            extra = 0 if clean or not metadata else json_size(metadata)
            for chunk in merge(pieces(text, separator, keep), joiner, size, overlap):
                used += json_size(chunk) + extra + 12  # {"text": ...}, and the row's separator
                if used > room:
                    raise self.too_large()
                rows.append({"text": chunk} if clean else {**metadata, "text": chunk})
        return rows
