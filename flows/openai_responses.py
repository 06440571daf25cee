"""OpenAI's Responses API over a flow: the request read, the answer and its stream written in the
shapes of the official ``openai`` package (``openai.types.responses``).

A flow is the model (``model`` is its id or endpoint name); the input is the text of the last
user message; the answer is the text of the flow's chat output (else its first output).

**Conversations.** A flow's chat memory is its ``session_id`` (``flows.memory``), so a response
id names its session: ``resp_<24 hex>_<the session, base64url>``, unique per response and
read back without a table. ``previous_response_id`` continues that session; an id that is not
of this form is taken as the session itself, as Langflow does (its response ids are its
sessions), so a conversation started on ``/api/v1/run`` with ``session_id`` goes on here with
that id. ``conversation`` (a string or ``{"id"}``) names a session directly. A new
conversation gets a new session (a UUID).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from rest_framework import serializers

RESPONSE_ID = re.compile(r"resp_[0-9a-f]{24}_(?P<session>[A-Za-z0-9_-]+)")
MAX_SESSION_ID = 255  # flows.models.Message.session_id
TEXT_PARTS = frozenset({"input_text", "output_text", "text"})
ROLES = frozenset({"user", "assistant", "system", "developer"})


class ResponsesRequestSerializer(serializers.Serializer):
    """The fields of ``client.responses.create(...)`` that a flow can honour; the rest are ignored
    (``instructions``, ``temperature``, ``store``...: the flow's own components decide those)."""

    model = serializers.CharField(max_length=255, help_text="The flow's id or endpoint name.")
    input = serializers.JSONField(help_text="Text, or a list of input items (messages with text).")
    stream = serializers.BooleanField(required=False, default=False)
    previous_response_id = serializers.CharField(required=False, allow_null=True, allow_blank=False,
                                                 max_length=1024)
    conversation = serializers.JSONField(required=False, allow_null=True,
                                         help_text="A session id, or {\"id\": session id}.")
    tools = serializers.ListField(child=serializers.JSONField(), required=False, allow_null=True,
                                 help_text="Not supported: a flow's tools are its own components.")

    def validate_input(self, value: Any) -> str:
        return input_text(value)

    def validate_tools(self, value):
        if value:
            raise serializers.ValidationError("Tools are not supported: a flow's tools are its own components.",
                                              code="tools_not_supported")
        return value

    def validate_conversation(self, value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, dict):
            value = value.get("id")
        if not isinstance(value, str) or not value or len(value) > MAX_SESSION_ID:
            raise serializers.ValidationError(f"A conversation is a session id of 1 to {MAX_SESSION_ID} "
                                              "characters, or {\"id\": ...}.")
        return value

    def validate(self, attrs):
        if attrs.get("previous_response_id") and attrs.get("conversation"):
            raise serializers.ValidationError(
                {"conversation": ["Give previous_response_id or conversation, not both."]},
                code="mutually_exclusive_parameters")
        return attrs


def input_text(value: Any) -> str:
    """The text a flow gets: ``input`` itself when it is text, else the last user message's.

    Earlier items (past turns, a system message) are left out: the flow's chat memory holds
    the conversation, and its own prompt the instructions. Only text parts are read; any other
    input (an image, a file, a tool's output) is refused rather than dropped unseen.
    """
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise serializers.ValidationError("Must be text or a list of input items.")
    text = None
    for index, item in enumerate(value):
        where = f"Item {index}"
        if not isinstance(item, dict):
            raise serializers.ValidationError(f"{where} must be an object.")
        kind = item.get("type", "message")
        if kind != "message":
            raise serializers.ValidationError(f"{where}: only messages are supported, not {str(kind)[:40]!r}.")
        role = item.get("role")
        if role not in ROLES:
            raise serializers.ValidationError(f"{where}: role must be one of {', '.join(sorted(ROLES))}.")
        if role == "user":
            text = _content_text(item.get("content"), where)
    if text is None:
        raise serializers.ValidationError("The input has no user message.")
    return text


def _content_text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise serializers.ValidationError(f"{where}: content must be text or a list of parts.")
    texts = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") not in TEXT_PARTS or not isinstance(part.get("text"), str):
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise serializers.ValidationError(f"{where}: only text parts are supported, not {str(kind)[:40]!r}.")
        texts.append(part["text"])
    return "\n".join(texts)


# --- Conversations ------------------------------------------------------------------------------

def response_id(session_id: str) -> str:
    """A new response id that names ``session_id``."""
    encoded = base64.urlsafe_b64encode(session_id.encode()).decode().rstrip("=")
    return f"resp_{secrets.token_hex(12)}_{encoded}"


def session_of(previous_response_id: str) -> str:
    """The session a response id names (see the module's docstring); raise ValidationError."""
    match = RESPONSE_ID.fullmatch(previous_response_id)
    if match is None:
        session = previous_response_id  # Langflow's ids are their sessions
    else:
        encoded = match["session"]
        try:
            session = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            session = previous_response_id
    if len(session) > MAX_SESSION_ID:
        raise serializers.ValidationError({"previous_response_id": [f"Names a session longer than {MAX_SESSION_ID} "
                                                                    "characters."]})
    return session


def new_session() -> str:
    return str(uuid.uuid4())


# --- The answer ---------------------------------------------------------------------------------

def answer_text(run_response: dict) -> str:
    """The text of a Langflow run response: its chat output's, else its first output's."""
    outputs = [item for run in run_response.get("outputs", ()) for item in run.get("outputs", ())]
    for item in sorted(outputs, key=lambda item: not item.get("messages")):  # chat outputs first
        for value in item.get("results", {}).values():
            if isinstance(value, dict) and isinstance(value.get("text"), str):
                return value["text"]
    return ""


@dataclass
class ResponseShape:
    """What every object and event of one response repeats."""

    model: str
    session_id: str
    previous_response_id: str | None = None
    conversation: str | None = None
    id: str = ""
    message_id: str = field(default_factory=lambda: f"msg_{secrets.token_hex(24)}")
    created_at: int = field(default_factory=lambda: int(time.time()))

    def __post_init__(self):
        if not self.id:
            self.id = response_id(self.session_id)

    def message(self, text: str, status: str = "completed") -> dict:
        return {"id": self.message_id, "type": "message", "status": status, "role": "assistant",
                "content": [self.part(text)] if status == "completed" else []}

    @staticmethod
    def part(text: str) -> dict:
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}

    def response(self, status: str, *, text: str | None = None, error: dict | None = None) -> dict:
        """The ``Response`` object: ``status`` is ``in_progress``, ``completed`` or ``failed``."""
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "completed_at": int(time.time()) if status == "completed" else None,
            "error": error,
            "incomplete_details": None,
            "instructions": None,
            "max_output_tokens": None,
            "metadata": {},
            "model": self.model,
            "output": [self.message(text)] if text is not None else [],
            "parallel_tool_calls": False,
            "previous_response_id": self.previous_response_id,
            "conversation": {"id": self.conversation} if self.conversation else None,
            "temperature": None,
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": [],
            "top_p": None,
            "truncation": "disabled",
            "usage": None,  # a flow may call several models, or none: no token count to give
            "user": None,
        }


# --- The stream ---------------------------------------------------------------------------------

async def stream_events(shape: ResponseShape, events: AsyncIterator[dict]) -> AsyncIterator[str]:
    """Turn a run's Langflow events (``flows.services.stream_planned``) into OpenAI's, framed as
    server-sent events: ``response.created``, ``response.in_progress``, the message's
    ``output_item.added`` and ``content_part.added``, an ``output_text.delta`` per model token,
    ``output_text.done``, ``content_part.done``, ``output_item.done``, ``response.completed``;
    or ``response.failed`` carrying the error.

    The deltas are the model's tokens as they come. The flow's answer ends the text: what the
    tokens did not already say (all of it, for a flow without a streaming model) comes as a
    last delta, so the deltas add up to ``output_text.done``'s text whenever the answer is the
    streamed model's text.
    """
    numbers = count()

    def event(kind: str, **fields) -> str:
        payload = {"type": kind, "sequence_number": next(numbers), **fields}
        return f"event: {kind}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n"

    where = {"item_id": shape.message_id, "output_index": 0, "content_index": 0}
    streamed: list[str] = []
    opened = False

    def open_message() -> list[str]:
        return [event("response.output_item.added", output_index=0, item=shape.message("", status="in_progress")),
                event("response.content_part.added", part=shape.part(""), **where)]

    yield event("response.created", response=shape.response("in_progress"))
    yield event("response.in_progress", response=shape.response("in_progress"))
    async with aclosing(events):  # type: ignore[type-var]  # an async generator (stream_planned)
        async for item in events:
            name, data = item.get("event"), item.get("data") or {}
            if name == "token" and data.get("chunk"):
                if not opened:
                    opened = True
                    for line in open_message():
                        yield line
                streamed.append(data["chunk"])
                yield event("response.output_text.delta", delta=data["chunk"], logprobs=[], **where)
            elif name == "end":
                text = answer_text(data.get("result") or {})
                if not opened:
                    for line in open_message():
                        yield line
                said = "".join(streamed)
                rest = text[len(said):] if text.startswith(said) else ""
                if rest:
                    yield event("response.output_text.delta", delta=rest, logprobs=[], **where)
                yield event("response.output_text.done", text=text, logprobs=[], **where)
                yield event("response.content_part.done", part=shape.part(text), **where)
                yield event("response.output_item.done", output_index=0, item=shape.message(text))
                yield event("response.completed", response=shape.response("completed", text=text))
                return
            elif name == "error":
                status = data.get("status_code") or 500
                error = {"code": "server_error" if status >= 500 else "invalid_prompt",
                         "message": str(data.get("error") or "The run failed.")}
                yield event("response.failed", response=shape.response("failed", error=error))
                return
