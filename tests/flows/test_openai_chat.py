"""The model client's line reader: lines split anywhere between chunks, in linear work."""

import asyncio
import time

import pytest

from flows.engine import openai_chat


class FakeContent:
    def __init__(self, chunks):
        self.chunks = chunks

    async def _iterate(self):
        for chunk in self.chunks:
            yield chunk

    def iter_any(self):
        return self._iterate()


class FakeResponse:
    def __init__(self, chunks):
        self.content = FakeContent(chunks)


def lines_of(chunks, settings, limit=10 * 1024 * 1024):
    settings.MODEL_MAX_RESPONSE_BYTES = limit
    request = openai_chat.ChatRequest(base_url="http://model.test/v1", api_key=None, model="m", timeout=30)

    async def collect():
        deadline = openai_chat._Deadline(request)
        return [line async for line in openai_chat._lines(request, FakeResponse(chunks), deadline)]

    return asyncio.run(collect())


def test_lines_split_across_chunks_and_crlf_are_read_whole(settings):
    chunks = [b"data: {\"a\"", b": 1}\r\n\r", b"\ndata: [DO", b"NE]\n", b"tail without newline"]
    assert lines_of(chunks, settings) == [b'data: {"a": 1}', b"", b"data: [DONE]", b"tail without newline"]


def test_a_long_line_sent_a_kilobyte_at_a_time_costs_linear_work(settings):
    """4 MB without a newline in 1 KB chunks: each chunk is searched once (it was re-copied whole)."""

    def cpu_seconds(kilobytes):
        chunks = [b"x" * 1024] * kilobytes + [b"\n"]
        started = time.thread_time()
        [line] = lines_of(chunks, settings)
        assert len(line) == kilobytes * 1024
        return time.thread_time() - started

    small, large = cpu_seconds(512), cpu_seconds(4096)
    assert large < 8 * 3 * max(small, 0.002)  # 8x the data: linear, with room for noise; quadratic would be ~64x


def test_the_answer_cap_counts_every_byte_read(settings):
    with pytest.raises(openai_chat.ModelCallFailed, match="MODEL_MAX_RESPONSE_BYTES"):
        lines_of([b"y" * 1000] * 20, settings, limit=10_000)
