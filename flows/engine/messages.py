"""The Message that travels along edges, serialised the way Langflow's API shows it."""

from __future__ import annotations

import datetime
import string
import uuid
from dataclasses import dataclass, field
from typing import Any

from .limits import ValueTooLarge, text_size


@dataclass
class Message:
    text: str
    sender: str = "Machine"
    sender_name: str = "AI"
    session_id: str = ""
    flow_id: str = ""
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    timestamp: str = field(
        default_factory=lambda: datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S %Z")
    )

    def to_dict(self) -> dict[str, Any]:
        return {
            "text_key": "text",
            "data": {"text": self.text},
            "default_value": "",
            "text": self.text,
            "sender": self.sender,
            "sender_name": self.sender_name,
            "files": [],
            "session_id": self.session_id,
            "timestamp": self.timestamp,
            "flow_id": self.flow_id,
            "error": False,
            "edit": False,
            "properties": {},
            "category": "message",
            "content_blocks": [],
            "id": self.id,
        }


def as_text(value: Any, *, template: str = "{text}", limit: int | None = None) -> str:
    """Turn whatever an edge carries into text: a Message's text, a string, Data through ``template``,
    a list's items joined by newlines.

    What is built here (a joined list, rendered Data) is measured before it is built: past
    ``limit`` UTF-8 bytes, ValueTooLarge is raised instead. A text that already exists (a string,
    a Message's text) is returned as it is, whatever its size: nothing is built.
    """
    return _text(value, _LazyTemplate(template), NO_LIMIT if limit is None else limit)[0]


NO_LIMIT = 2**63


class _LazyTemplate:
    """A Data template parsed the first time Data needs it (a string never does)."""

    def __init__(self, template: str):
        self.source = template
        self._parsed: DataTemplate | None = None

    def get(self) -> DataTemplate:
        if self._parsed is None:
            self._parsed = DataTemplate(self.source)
        return self._parsed


def _text(value: Any, template: _LazyTemplate, limit: int) -> tuple[str, int | None]:
    """Return ``(text, size)``; ``size`` is None when the text was not built (not measured yet)."""
    if value is None:
        return "", 0
    if isinstance(value, Message):
        return value.text, None
    if isinstance(value, str):
        return value, None
    if isinstance(value, dict):
        return template.get().render(value, limit)
    if isinstance(value, (list, tuple)):
        parts: list[str] = []
        total = 0
        for item in value:
            if parts:
                total += 1  # the newline
            text, size = _text(item, template, limit - total)
            total += text_size(text) if size is None else size
            if total > limit:
                raise ValueTooLarge(limit)
            parts.append(text)
        return "\n".join(parts), total
    text = str(value)
    return text, None


def format_data(template: str, data: dict, *, limit: int | None = None) -> str:
    """Fill ``{key}`` placeholders from ``data`` (Langflow's Data: its ``data`` dict if present).

    Missing keys become empty strings, as in Langflow. Only plain names are allowed;
    ``{a.b}``, ``{a[0]}``, ``{a!r}``, ``{a:>9}`` raise ValueError.
    """
    return DataTemplate(template).render(data, NO_LIMIT if limit is None else limit)[0]


class DataTemplate:
    """A Data template (``{name}`` placeholders, ``{{`` and ``}}`` for braces), parsed once and then
    applied to any number of records, each in time linear in the template and the record.

    A rendering counts as the template's own size plus every value it substitutes (more than
    the text it makes, never less), and is refused before it is built when that exceeds the
    limit: a template applied to many records costs at most the limit, however long it is.
    """

    def __init__(self, template: str):
        counts: dict[str, int] = {}
        for _literal, name, spec, conversion in _FORMATTER.parse(template):  # ValueError when unbalanced
            if name is None:
                continue
            if not name.isidentifier() or spec or conversion:
                raise ValueError(f"unsupported placeholder {{{name}{'!' + conversion if conversion else ''}"
                                 f"{':' + spec if spec else ''}}}: use plain {{name}}")
            counts[name] = counts.get(name, 0) + 1
        self.source = template
        self.size = text_size(template)
        self.counts = counts
        self._blank = dict.fromkeys(counts, "")

    def render(self, data: dict, limit: int) -> tuple[str, int]:
        """Return ``(text, size)``, the size being the bound described above; raise ValueTooLarge."""
        values = data.get("data")
        if not isinstance(values, dict):
            values = data
        size = self.size
        if size > limit:
            raise ValueTooLarge(limit)
        texts = {}
        # Only the names both have: as many steps as the smaller of the two.
        names = values.keys() if len(values) < len(self.counts) else self.counts.keys()
        for name in names:
            if name in self.counts and name in values:
                value = values[name]
                text = value if isinstance(value, str) else format(value, "")
                size += self.counts[name] * text_size(text)
                if size > limit:
                    raise ValueTooLarge(limit)
                texts[name] = text
        mapping = self._blank.copy()
        mapping.update(texts)
        return self.source.format_map(mapping), size


_FORMATTER = string.Formatter()
