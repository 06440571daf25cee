"""The Message that travels along edges, serialised the way Langflow's API shows it."""

from __future__ import annotations

import datetime
import string
import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Message:
    text: str
    sender: str = "Machine"
    sender_name: str = "AI"
    session_id: str = ""
    flow_id: str = ""
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    timestamp: str = field(
        default_factory=lambda: datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S %Z")
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


def as_text(value: Any, *, template: str = "{text}") -> str:
    """Turn whatever an edge carries into text: a Message's text, a string, Data through ``template``."""
    if value is None:
        return ""
    if isinstance(value, Message):
        return value.text
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return format_data(template, value)
    if isinstance(value, (list, tuple)):
        return "\n".join(as_text(item, template=template) for item in value)
    return str(value)


class _BlankForMissing(dict):
    def __missing__(self, key):
        return ""


def format_data(template: str, data: dict) -> str:
    """Fill ``{key}`` placeholders from ``data`` (Langflow's Data: its ``data`` dict if present).

    Missing keys become empty strings, as in Langflow. Only plain names are allowed;
    ``{a.b}``, ``{a[0]}``, ``{a!r}``, ``{a:>9}`` raise ValueError.
    """
    values = data.get("data") if isinstance(data.get("data"), dict) else data
    return _SAFE_FORMATTER.vformat(template, (), _BlankForMissing(values))


class _SafeFormatter(string.Formatter):
    """``str.format`` limited to ``{name}``: no attribute access, indexing, conversion or width,
    so a template can neither reach into objects nor ask for a gigabyte of padding."""

    def parse(self, format_string):
        for literal, field_name, format_spec, conversion in super().parse(format_string):
            if field_name is not None and (not field_name.isidentifier() or format_spec or conversion):
                raise ValueError(f"unsupported placeholder {{{field_name}{'!' + conversion if conversion else ''}"
                                 f"{':' + format_spec if format_spec else ''}}}: use plain {{name}}")
            yield literal, field_name, format_spec, conversion


_SAFE_FORMATTER = _SafeFormatter()
