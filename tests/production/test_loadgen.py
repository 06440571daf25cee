"""The benchmark's load generator (bench/loadgen.py) counts what the I/O-bound goals need, and only that."""

import asyncio
import json

import pytest

from bench import loadgen
from tests.harness.modelstub import ModelStub

pytestmark = [pytest.mark.own_site]

EVENTS = {
    "/end": [{"event": "token", "data": {"chunk": "stub: hi"}}, {"event": "end", "data": {"result": "stub: hi"}}],
    "/error": [{"event": "token", "data": {"chunk": "x"}}, {"event": "error", "data": {"error": "model failed"}}],
    "/noend": [{"event": "token", "data": {"chunk": "stub: hi"}}],
}


async def langflow_like_server(reader, writer):
    """Answer each request with Langflow's stream framing, chunked; /cut closes in the middle."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(next((line.split(b":")[1] for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length")), b"0"))
            await reader.readexactly(length)
            path = head.split(b" ")[1].decode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
            if path == "/cut":
                writer.write(b"10\r\n{\"event\": \"token\"")
                await writer.drain()
                writer.close()
                return
            for event in EVENTS[path]:
                data = (json.dumps(event) + "\n\n").encode()
                # split each event over two chunks: the framing must not depend on chunk boundaries
                for part in (data[:7], data[7:]):
                    writer.write(b"%x\r\n%s\r\n" % (len(part), part))
                    await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


def served(coroutine_factory):
    async def main():
        server = await asyncio.start_server(langflow_like_server, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            return await coroutine_factory(f"http://127.0.0.1:{port}")
        finally:
            server.close()

    return asyncio.run(main())


@pytest.mark.parametrize("path, completed, error", [
    ("/end", 1, None), ("/error", 0, "error event"), ("/noend", 0, "stream without end event"), ("/cut", 0, "cut off"),
])
def test_a_stream_is_complete_only_when_it_ends_with_an_end_event(path, completed, error):
    result = served(lambda base: loadgen.wave(base + path, count=3, stream=True, limit=5, expect="stub: "))
    assert result["completed"] == 3 * completed
    assert result["all_completed"] is bool(completed)
    assert result["errors"] == ({} if error is None else {error: 3})


def test_the_wave_reports_the_time_from_the_first_send_to_the_last_completion():
    with ModelStub() as stub:
        body = json.dumps({"model": "stub,delay=0.5", "messages": [{"role": "user", "content": "hi"}]})
        result = asyncio.run(loadgen.wave(stub.url("/v1/chat/completions"), count=100, body=body, stream=False,
                                          limit=10, expect="stub: hi"))
        assert result["completed"] == 100 and result["all_completed"]
        assert 0.5 <= result["wall_seconds"] < 3
        assert stub.stats()["max_in_flight"] == 100


def test_the_closed_loop_keeps_its_clients_busy_and_drains_at_the_end():
    with ModelStub() as stub:
        body = json.dumps({"model": "stub,delay=0.2", "messages": [{"role": "user", "content": "hi"}]})
        spec = {"load": {"kind": "closed", "url": stub.url("/v1/chat/completions"), "clients": 4, "seconds": 1.0,
                         "body": body, "expect": "stub: hi"},
                "probes": [{"name": "stats", "url": stub.url("/stats")}, {"name": "missing", "url": stub.url("/nope")}]}
        result = asyncio.run(loadgen.run(spec))
        stats = stub.stats()
    load = result["load"]
    assert load["error_count"] == 0 and load["statuses"] == {"200": load["completed"]}
    assert 12 <= load["completed"] <= 24   # 4 clients x 1 s / 0.2 s (+ the last of each); one client alone: 5
    # keep-alive: one connection per client and per probe (plus this test's own two stats calls)
    assert stats["connections"] <= 4 + 2 + 2
    assert load["latency"]["p50_ms"] >= 200
    assert result["probes"]["stats"]["count"] >= 10 and result["probes"]["stats"]["failures"] == 0
    assert result["probes"]["missing"]["unexpected_statuses"] == {"404": result["probes"]["missing"]["count"]}


def test_a_request_slower_than_the_timeout_is_an_error_not_a_completion():
    with ModelStub() as stub:
        body = json.dumps({"model": "stub,delay=5", "messages": []})
        result = asyncio.run(loadgen.closed_loop(stub.url("/v1/chat/completions"), clients=2, seconds=0.1, body=body,
                                                 timeout=0.5))
    assert result["completed"] == 0 and result["errors"] == {"timeout": 2}


def test_only_loopback_urls_are_loaded():
    with pytest.raises(ValueError):
        loadgen.Target("http://10.0.0.1/")
