"""A call to an OpenAI-compatible ``/chat/completions`` endpoint, plain or streamed (SSE), awaited.

``complete`` and ``stream`` return the answer's text; ``chat`` and ``stream_chat`` also carry
function tools (``ChatRequest.tools``) and return the model's ``tool_calls`` in a ``Reply``
(streamed tool-call deltas are put back together), for the Agent's loop.

A run waiting on a model holds no thread: the call is made with aiohttp on the event loop, so a
worker process can have thousands in flight (aiohttp, not httpx: httpx's connection pool costs
milliseconds of CPU per call once hundreds of connections are open; ``bench/clients.py``). Three bounds hold whatever the model server does:
``timeout`` is the deadline of the whole call (connecting, the headers and every read
together: a server trickling one byte every few seconds still fails on time),
``MODEL_MAX_RESPONSE_BYTES`` caps what is read (a whole answer, or a stream's lines together),
and redirects are never followed. A caller that goes away (the client disconnected) cancels
the call, and the connection to the model server is closed with it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import AsyncGenerator
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
from django.conf import settings

from . import egress

logger = logging.getLogger("flows.engine.model")


class ModelCallFailed(Exception):
    """The call failed; ``str()`` is a short reason fit for the client, never the upstream body."""


@dataclass(frozen=True)
class ChatRequest:
    base_url: str
    api_key: str | None
    model: str
    messages: list[dict] = field(default_factory=list)
    temperature: float | None = None
    max_tokens: int | None = None
    timeout: float = 60.0
    # A base URL a flow chose and the operator did not allow: connect to public addresses only.
    public_only: bool = False
    # OpenAI function tools (``{"type": "function", "function": {...}}``), and how to pick one.
    tools: list[dict] | None = None
    tool_choice: str | dict | None = None
    # E.g. ``{"type": "json_schema", "json_schema": {...}}`` for structured output.
    response_format: dict | None = None

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"

    def body(self, *, stream: bool) -> dict:
        body = {"model": self.model, "messages": self.messages, "stream": stream}
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.max_tokens:
            body["max_tokens"] = self.max_tokens
        if self.tools:
            body["tools"] = self.tools
            if self.tool_choice is not None:
                body["tool_choice"] = self.tool_choice
        if self.response_format is not None:
            body["response_format"] = self.response_format
        return body

    def headers(self) -> dict:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers


@dataclass
class ToolCall:
    """One function call the model asked for; ``arguments`` is the JSON text it wrote."""

    id: str
    name: str
    arguments: str

    def to_dict(self) -> dict:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass
class Reply:
    """The assistant's answer: its text, and the tools it calls (none: the text is final)."""

    content: str
    tool_calls: list[ToolCall] = field(default_factory=list)

    def assistant_message(self) -> dict:
        """The answer as the ``assistant`` message the next request's history carries."""
        message: dict = {"role": "assistant", "content": self.content or None}
        if self.tool_calls:
            message["tool_calls"] = [call.to_dict() for call in self.tool_calls]
        return message


# --- Sessions: one pair per event loop (a worker has one; each test request makes its own) -------

_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[bool, aiohttp.ClientSession]] = (
    weakref.WeakKeyDictionary()
)


def _new_session(public_only: bool) -> aiohttp.ClientSession:
    limit = settings.MODEL_MAX_CONNECTIONS
    if public_only:
        # Every new connection resolves and checks again: no DNS cache to rebind through.
        # The environment's proxies are ignored: a proxy would resolve the host, unchecked.
        connector = egress.PublicOnlyConnector(limit=limit, use_dns_cache=False)
        return aiohttp.ClientSession(connector=connector, trust_env=False)
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit), trust_env=True)


@asynccontextmanager
async def _session(public_only: bool):
    """The shared session of this event loop: connections to a model server are kept alive
    between runs. Without MODEL_CONNECTION_REUSE (the tests, whose every request runs on an
    event loop of its own), a session for this call only."""
    if not settings.MODEL_CONNECTION_REUSE:
        async with _new_session(public_only) as session:
            yield session
        return
    sessions = _sessions.setdefault(asyncio.get_running_loop(), {})
    if public_only not in sessions:
        sessions[public_only] = _new_session(public_only)
    yield sessions[public_only]


# --- The call ------------------------------------------------------------------------------------

class _Deadline:
    """The call's one deadline, applied to each await in turn (never across a ``yield``)."""

    def __init__(self, request: ChatRequest):
        self.request = request
        self.at = asyncio.get_running_loop().time() + request.timeout

    def timeout(self):
        return asyncio.timeout_at(self.at)

    def failed(self) -> ModelCallFailed:
        return ModelCallFailed(f"the model server did not answer within {self.request.timeout:g} s")


@asynccontextmanager
async def _response(request: ChatRequest, deadline: _Deadline, *, stream: bool):
    """POST the body and yield the open response (2xx only); raise ModelCallFailed, and
    egress.Refused when a ``public_only`` call's host resolves to an address that is not public
    by the time it connects. The connection is closed unless the answer was read to its end."""
    async with _session(request.public_only) as session:
        try:
            async with deadline.timeout():
                response = await session.post(request.url, json=request.body(stream=stream),
                                              headers=request.headers(), allow_redirects=False)
        except TimeoutError:
            raise deadline.failed() from None
        except aiohttp.ClientError as error:
            logger.warning("Model server unreachable at %s: %s", request.url, error)
            raise ModelCallFailed("could not connect to the model server") from None
        async with _answer(request, deadline, response):
            yield response


@asynccontextmanager
async def _answer(request: ChatRequest, deadline: _Deadline, response: aiohttp.ClientResponse):
    try:
        if response.status >= 300:
            excerpt = await _excerpt(response, deadline)
            logger.warning("Model server at %s answered HTTP %s: %.500s", request.url, response.status, excerpt)
            raise ModelCallFailed(f"the model server answered HTTP {response.status}")
        yield response
    except TimeoutError:
        raise deadline.failed() from None
    except aiohttp.ClientError:
        logger.warning("Model answer from %s broke off", request.url, exc_info=True)
        raise ModelCallFailed("the model server's answer broke off") from None
    finally:
        if response.content.at_eof():
            response.release()
        else:
            response.close()


async def _excerpt(response: aiohttp.ClientResponse, deadline: _Deadline) -> str:
    """The start of an error answer, for the operator's log; never the client's answer."""
    try:
        async with deadline.timeout():
            return (await response.content.read(500)).decode(errors="replace")
    except (TimeoutError, aiohttp.ClientError):
        return ""


def _too_large(request: ChatRequest) -> ModelCallFailed:
    logger.warning("The model server at %s answered more than MODEL_MAX_RESPONSE_BYTES (%d)", request.url,
                   settings.MODEL_MAX_RESPONSE_BYTES)
    return ModelCallFailed(f"the model's answer is larger than {settings.MODEL_MAX_RESPONSE_BYTES:,} bytes "
                           "(MODEL_MAX_RESPONSE_BYTES)")


async def _body(request: ChatRequest) -> bytes:
    """The whole (non-streamed) answer, read within the deadline and the size cap."""
    deadline = _Deadline(request)
    limit = settings.MODEL_MAX_RESPONSE_BYTES
    async with _response(request, deadline, stream=False) as response:
        body = bytearray()
        async with deadline.timeout():
            async for chunk in response.content.iter_any():
                body += chunk
                if len(body) > limit:
                    raise _too_large(request)
    return bytes(body)


def _unreadable(request: ChatRequest) -> ModelCallFailed:
    logger.warning("Unreadable answer from the model server at %s", request.url)
    return ModelCallFailed("the model server's answer could not be read")


async def complete(request: ChatRequest) -> str:
    """Return the assistant's answer; raise ModelCallFailed."""
    body = await _body(request)
    try:
        content = json.loads(body)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise _unreadable(request) from None
    return content if isinstance(content, str) else ""


async def chat(request: ChatRequest) -> Reply:
    """Return the assistant's answer with the tools it calls; raise ModelCallFailed."""
    body = await _body(request)
    try:
        message = json.loads(body)["choices"][0]["message"]
        content = message.get("content")
        calls = [_tool_call(raw, position) for position, raw in enumerate(message.get("tool_calls") or ())]
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise _unreadable(request) from None
    return Reply(content=content if isinstance(content, str) else "", tool_calls=calls)


def _tool_call(raw: dict, position: int) -> ToolCall:
    """A ``tool_calls`` item; TypeError when it is not one. Arguments a server sent as an
    object (not JSON text) are written back as JSON text."""
    function = raw["function"]
    name, arguments = function.get("name"), function.get("arguments")
    if not isinstance(name, str) or not name:
        raise TypeError("a tool call without a name")
    if isinstance(arguments, dict):
        arguments = json.dumps(arguments)
    elif arguments is None:
        arguments = ""
    elif not isinstance(arguments, str):
        raise TypeError("a tool call's arguments must be JSON text")
    call_id = raw.get("id")
    return ToolCall(id=call_id if isinstance(call_id, str) and call_id else f"call_{position}",
                    name=name, arguments=arguments)


async def _lines(request: ChatRequest, response: aiohttp.ClientResponse,
                 deadline: _Deadline) -> AsyncGenerator[bytes, None]:
    """The body's lines, each read within the deadline, all of them within the size cap.

    Each chunk is searched once, from where the last line ended: a server that sends megabytes
    without a newline, a kilobyte at a time, costs linear work, not a rescan per chunk.
    """
    limit = settings.MODEL_MAX_RESPONSE_BYTES
    received = 0
    pending = bytearray()
    chunks = response.content.iter_any()
    while True:
        try:
            async with deadline.timeout():
                chunk = await anext(chunks)
        except StopAsyncIteration:
            break
        received += len(chunk)
        if received > limit:
            raise _too_large(request)
        start = 0
        while (newline := chunk.find(b"\n", start)) >= 0:
            pending += chunk[start:newline]
            yield bytes(pending).rstrip(b"\r")
            pending.clear()
            start = newline + 1
        pending += chunk[start:]
    if pending:
        yield bytes(pending)


async def _deltas(request: ChatRequest) -> AsyncGenerator[dict, None]:
    """Each ``choices[0].delta`` of a streamed answer (``data: {...}`` lines), until ``[DONE]``."""
    deadline = _Deadline(request)
    async with _response(request, deadline, stream=True) as response, \
            aclosing(_lines(request, response, deadline)) as lines:
        async for line in lines:
            if not line.startswith(b"data:"):
                continue
            payload = line[len(b"data:"):].strip()
            if payload == b"[DONE]":
                return
            try:
                choices = json.loads(payload).get("choices") or [{}]
                delta = choices[0].get("delta") or {}
                if not isinstance(delta, dict):
                    raise TypeError("a delta must be an object")
            except (ValueError, AttributeError, TypeError, IndexError):
                raise _unreadable(request) from None
            yield delta


async def stream(request: ChatRequest) -> AsyncGenerator[str, None]:
    """Yield the answer's text pieces as the server sends them (``data: {...}`` lines)."""
    async with aclosing(_deltas(request)) as deltas:
        async for delta in deltas:
            piece = delta.get("content")
            if isinstance(piece, str) and piece:
                yield piece


async def stream_chat(request: ChatRequest) -> AsyncGenerator[str | Reply, None]:
    """Yield the answer's text pieces as they come, then the whole Reply, its tool calls put
    together from their deltas (each call's ``index`` names it; its name and arguments come in
    pieces). Raise ModelCallFailed."""
    pieces: list[str] = []
    calls = _ToolCallDeltas()
    async with aclosing(_deltas(request)) as deltas:
        async for delta in deltas:
            piece = delta.get("content")
            if isinstance(piece, str) and piece:
                pieces.append(piece)
                yield piece
            for raw in delta.get("tool_calls") or ():
                try:
                    calls.add(raw)
                except (TypeError, AttributeError, KeyError):
                    raise _unreadable(request) from None
    try:
        tool_calls = calls.tool_calls()
    except TypeError:
        raise _unreadable(request) from None
    yield Reply(content="".join(pieces), tool_calls=tool_calls)


class _ToolCallDeltas:
    """Streamed ``tool_calls`` items put back together, each in constant time."""

    def __init__(self):
        self.calls: dict[int, dict] = {}
        self.ids: set[str] = set()
        self.last: int | None = None

    def add(self, raw: dict) -> None:
        index = raw.get("index")
        call_id = raw.get("id") if isinstance(raw.get("id"), str) else ""
        if not isinstance(index, int) or isinstance(index, bool):
            # No index: a new id starts a new call, anything else continues the last one.
            index = len(self.calls) if self.last is None or (call_id and call_id not in self.ids) else self.last
        call = self.calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
        self.last = index
        if call_id:
            call["id"] = call_id
            self.ids.add(call_id)
        function = raw.get("function") or {}
        name, arguments = function.get("name"), function.get("arguments")
        # A name sent whole in every delta (some servers repeat it) is kept once.
        if isinstance(name, str) and name and name != call["name"]:
            call["name"] += name
        if isinstance(arguments, str):
            call["arguments"] += arguments
        elif isinstance(arguments, dict):
            call["arguments"] += json.dumps(arguments)
        elif arguments is not None:
            raise TypeError("a tool call's arguments must be JSON text")

    def tool_calls(self) -> list[ToolCall]:
        return [_tool_call({"id": call["id"], "function": {"name": call["name"], "arguments": call["arguments"]}},
                           position) for position, call in enumerate(self.calls.values())]
