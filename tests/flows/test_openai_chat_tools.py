"""The model client with function tools: tool_calls read whole, or put together from streamed deltas."""

import asyncio
import json

import pytest

from flows.engine import openai_chat
from tests.flows.scripted_model import ScriptedModelServer, calls, final
from tests.flows.test_openai_chat import FakeResponse

TOOLS = [{"type": "function", "function": {"name": "add", "parameters": {"type": "object", "properties": {}}}}]


@pytest.fixture
def scripted():
    with ScriptedModelServer() as server:
        yield server


def request_to(server, **kw):
    return openai_chat.ChatRequest(base_url=server.base_url, api_key=None, model="m",
                                   messages=[{"role": "user", "content": "hi"}], timeout=5, **kw)


def streamed(request):
    async def collect():
        return [item async for item in openai_chat.stream_chat(request)]

    return asyncio.run(collect())


def test_a_request_with_tools_sends_them_and_reads_the_tool_calls(scripted):
    scripted.script = [calls(("add", {"a": 1}), ("add", '{"a": 2}'), content="thinking")]
    reply = asyncio.run(openai_chat.chat(request_to(scripted, tools=TOOLS, tool_choice="auto")))
    assert scripted.requests[0]["tools"] == TOOLS and scripted.requests[0]["tool_choice"] == "auto"
    assert reply.content == "thinking"
    assert [(call.id, call.name, call.arguments) for call in reply.tool_calls] == [
        ("call_0", "add", '{"a": 1}'), ("call_1", "add", '{"a": 2}')]
    assert reply.assistant_message()["tool_calls"][1] == {
        "id": "call_1", "type": "function", "function": {"name": "add", "arguments": '{"a": 2}'}}


def test_a_plain_request_sends_no_tools_and_complete_is_unchanged(scripted):
    scripted.script = [final("hello"), final("again")]
    assert asyncio.run(openai_chat.complete(request_to(scripted))) == "hello"
    reply = asyncio.run(openai_chat.chat(request_to(scripted)))
    assert (reply.content, reply.tool_calls) == ("again", [])
    assert all("tools" not in body and "tool_choice" not in body for body in scripted.requests)
    assert reply.assistant_message() == {"role": "assistant", "content": "again"}


def test_a_response_format_is_sent_as_given(scripted):
    scripted.script = [final("{}")]
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    asyncio.run(openai_chat.chat(request_to(scripted, response_format=schema)))
    assert scripted.requests[0]["response_format"] == schema


def test_streamed_tool_calls_are_put_together_from_their_deltas(scripted):
    scripted.script = [calls(("add", {"a": 1, "b": [2, 3]}), ("add", {"c": "x"}), content="let me add")]
    items = streamed(request_to(scripted, tools=TOOLS))
    *pieces, reply = items
    assert "".join(pieces) == "let me add" and len(pieces) > 1
    assert isinstance(reply, openai_chat.Reply) and reply.content == "let me add"
    assert [(call.name, json.loads(call.arguments)) for call in reply.tool_calls] == [
        ("add", {"a": 1, "b": [2, 3]}), ("add", {"c": "x"})]


def deltas_of(*deltas) -> list[bytes]:
    lines = [b"data: " + json.dumps({"choices": [{"index": 0, "delta": delta}]}).encode() + b"\n\n" for delta in deltas]
    return [*lines, b"data: [DONE]\n\n"]


def reply_from(chunks, monkeypatch):
    """stream_chat over a fixed body, without a server."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def fake_response(request, deadline, *, stream):
        yield FakeResponse(chunks)

    monkeypatch.setattr(openai_chat, "_response", fake_response)
    request = openai_chat.ChatRequest(base_url="http://model.test/v1", api_key=None, model="m", timeout=5)
    return streamed(request)[-1]


def test_deltas_without_an_index_and_a_name_sent_in_every_delta_still_make_whole_calls(monkeypatch):
    reply = reply_from(deltas_of(
        {"tool_calls": [{"id": "x", "function": {"name": "add", "arguments": '{"a"'}}]},
        {"tool_calls": [{"function": {"name": "add", "arguments": ": 1}"}}]},
        {"tool_calls": [{"id": "y", "function": {"name": "sub", "arguments": {"b": 2}}}]},
    ), monkeypatch)
    assert [(call.id, call.name, call.arguments) for call in reply.tool_calls] == [
        ("x", "add", '{"a": 1}'), ("y", "sub", '{"b": 2}')]


@pytest.mark.parametrize("delta", [
    {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]},  # never named
    {"tool_calls": [{"index": 0, "function": {"name": "add", "arguments": 7}}]},
    {"tool_calls": ["not an object"]},
    "not an object",
])
def test_a_malformed_streamed_tool_call_is_an_unreadable_answer(monkeypatch, delta):
    with pytest.raises(openai_chat.ModelCallFailed, match="could not be read"):
        reply_from(deltas_of(delta), monkeypatch)


def test_a_malformed_tool_call_in_a_whole_answer_is_an_unreadable_answer(monkeypatch):
    async def body(request):
        return json.dumps({"choices": [{"message": {"content": None, "tool_calls": [{"function": {"name": 3}}]}}]})

    monkeypatch.setattr(openai_chat, "_body", body)
    request = openai_chat.ChatRequest(base_url="http://model.test/v1", api_key=None, model="m", timeout=5)
    with pytest.raises(openai_chat.ModelCallFailed, match="could not be read"):
        asyncio.run(openai_chat.chat(request))


def test_many_tool_call_deltas_without_an_index_cost_linear_work(monkeypatch):
    """Each new id is looked up in a set: 20,000 calls put together without rescanning."""
    import time

    def seconds(count):
        chunks = deltas_of(*({"tool_calls": [{"id": f"c{n}", "function": {"name": "f", "arguments": "{}"}}]}
                             for n in range(count)))
        started = time.thread_time()
        reply = reply_from(chunks, monkeypatch)
        assert len(reply.tool_calls) == count
        return time.thread_time() - started

    small, large = seconds(2_500), seconds(20_000)
    assert large < 8 * 3 * max(small, 0.01)
