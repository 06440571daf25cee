"""The benchmark's model stub (tests/harness/modelstub.py) behaves as the I/O-bound bench and fault tests need."""

import http.client
import json
import socket
import time

import pytest

from tests.harness.modelstub import ModelStub

pytestmark = [pytest.mark.own_site]


@pytest.fixture(scope="module")
def running_stub():
    # Defaults a request overrides in its model field: a test that forgets to is slow, not wrong.
    with ModelStub(delay=5, chunks=3) as stub:
        yield stub


@pytest.fixture
def stub(running_stub):
    running_stub.reset()
    return running_stub


def chat(stub, model, *, stream=False, messages=None, timeout=10):
    """POST a chat completion on a new connection; return (response, elapsed seconds, connection)."""
    connection = http.client.HTTPConnection("127.0.0.1", stub.port, timeout=timeout)
    body = {"model": model, "stream": stream,
            "messages": messages or [{"role": "user", "content": "hello"}]}
    started = time.monotonic()
    connection.request("POST", "/v1/chat/completions", body=json.dumps(body),
                       headers={"Content-Type": "application/json"})
    return connection.getresponse(), time.monotonic() - started, connection


def raw(stub, data: bytes, timeout=5) -> bytes:
    with socket.create_connection(("127.0.0.1", stub.port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def wait_for(stub, predicate, limit=1.0) -> dict:
    deadline = time.monotonic() + limit
    while True:
        stats = stub.stats()
        if predicate(stats) or time.monotonic() > deadline:
            return stats
        time.sleep(0.02)


def test_base_url_points_at_the_chat_completions_api(stub):
    assert stub.base_url == f"http://127.0.0.1:{stub.port}/v1"


def test_plain_answer_after_the_delay_echoes_the_last_user_message(stub):
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "first"},
                {"role": "assistant", "content": "ok"}, {"role": "user", "content": [{"type": "text", "text": "last one"}]}]
    response, elapsed, connection = chat(stub, "stub,delay=0.3", messages=messages)
    answer = json.loads(response.read())
    connection.close()
    assert response.status == 200
    assert 0.3 <= elapsed < 1.5
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"] == {"role": "assistant", "content": "stub: last one"}
    assert wait_for(stub, lambda s: s["completed"] == 1)["requests"] == 1


def test_stream_spreads_its_chunks_over_stream_seconds_then_done(stub):
    response, _, connection = chat(stub, "stub,delay=0,stream_seconds=0.6,chunks=4", stream=True)
    assert response.status == 200
    assert response.getheader("Transfer-Encoding") == "chunked"
    assert response.getheader("Content-Type") == "text/event-stream"
    started, lines = time.monotonic(), []
    while line := response.readline():
        if line.strip():
            lines.append((time.monotonic() - started, line.decode().strip()))
    connection.close()
    assert [text for _, text in lines][-1] == "data: [DONE]"
    chunks = [json.loads(text.removeprefix("data: ")) for _, text in lines[:-1]]
    assert len(chunks) == 4
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert "".join(chunk["choices"][0]["delta"]["content"] for chunk in chunks) == "stub: hello"
    arrivals = [at for at, _ in lines[:-1]]
    assert arrivals[0] >= 0.1 and arrivals[-1] >= 0.5, arrivals   # evenly: at 0.15, 0.3, 0.45, 0.6 s
    assert arrivals[-1] - arrivals[0] >= 0.35, arrivals


def test_answer_bytes_sets_the_content_length_plain_and_streamed(stub):
    response, _, connection = chat(stub, "stub,delay=0,answer_bytes=100000")
    assert len(json.loads(response.read())["choices"][0]["message"]["content"]) == 100000
    connection.close()
    response, _, connection = chat(stub, "stub,delay=0,answer_bytes=70000,chunks=7", stream=True)
    pieces = [json.loads(line[6:])["choices"][0]["delta"]["content"]
              for line in response.read().decode().splitlines() if line.startswith("data: {")]
    connection.close()
    assert len(pieces) == 7 and sum(map(len, pieces)) == 70000


def test_status_answers_that_status_with_a_json_error(stub):
    response, _, connection = chat(stub, "stub,delay=0,status=503")
    assert response.status == 503
    assert "error" in json.loads(response.read())
    connection.close()


def test_trickle_sends_one_byte_per_interval_and_notices_the_client_leaving(stub):
    response, _, connection = chat(stub, "stub,delay=0,trickle=0.2")
    assert response.status == 200
    started = time.monotonic()
    received = response.read(3)
    assert len(received) == 3 and 0.4 <= time.monotonic() - started < 1.5
    connection.close()
    stats = wait_for(stub, lambda s: s["disconnected"] == 1)
    assert stats["disconnected"] == 1 and stats["in_flight"] == 0 and stats["completed"] == 0


def test_a_client_leaving_during_the_delay_is_counted_promptly(stub):
    response_socket = socket.create_connection(("127.0.0.1", stub.port))
    body = json.dumps({"model": "stub,delay=30", "messages": []}).encode()
    response_socket.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    assert wait_for(stub, lambda s: s["in_flight"] == 1)["in_flight"] == 1
    response_socket.close()
    stats = wait_for(stub, lambda s: s["disconnected"] == 1, limit=1.0)
    assert stats["disconnected"] == 1 and stats["in_flight"] == 0 and stats["open_connections"] == 1  # stats' own


def test_keep_alive_serves_several_requests_on_one_connection(stub):
    connection = http.client.HTTPConnection("127.0.0.1", stub.port, timeout=5)
    for word in ("one", "two", "three"):
        body = json.dumps({"model": "stub,delay=0", "messages": [{"role": "user", "content": word}]})
        connection.request("POST", "/v1/chat/completions", body=body)
        assert json.loads(connection.getresponse().read())["choices"][0]["message"]["content"] == f"stub: {word}"
    connection.close()
    stats = stub.stats()
    assert stats["completed"] == 3 and stats["connections"] == 2  # the three, then this stats request


def test_a_chunked_request_body_is_read(stub):
    body = json.dumps({"model": "stub,delay=0", "messages": [{"role": "user", "content": "chunked"}]}).encode()
    half = len(body) // 2
    answer = raw(stub, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                       b"Connection: close\r\n\r\n%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n"
                 % (half, body[:half], len(body) - half, body[half:]))
    assert answer.startswith(b"HTTP/1.1 200 ") and b"stub: chunked" in answer


@pytest.mark.parametrize("request_bytes, status", [
    (b"garbage\r\n\r\n", b"400"),
    (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", b"400"),
    (b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: nope\r\n\r\n", b"400"),
    (b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot json!", b"400"),
    (b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]", b"400"),
    (b"GET /v1/chat/completions HTTP/1.1\r\nConnection: close\r\n\r\n", b"405"),
    (b"GET /nowhere HTTP/1.1\r\nConnection: close\r\n\r\n", b"404"),
    (b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", b"413"),
])
def test_bad_requests_are_refused_and_the_stub_keeps_serving(stub, request_bytes, status):
    assert raw(stub, request_bytes).split(b" ", 2)[1] == status
    response, _, connection = chat(stub, "stub,delay=0")
    assert response.status == 200
    connection.close()


@pytest.mark.parametrize("model", ["stub,delay=-1", "stub,delay=abc", "stub,chunks=0", "stub,status=99",
                                   "stub,delay=nan", "stub,unknown=1"])
def test_bad_settings_in_the_model_field_are_a_400(stub, model):
    response, _, connection = chat(stub, model)
    assert response.status == 400
    assert "stub setting" in json.loads(response.read())["error"]["message"]
    connection.close()


def test_stop_ends_the_process():
    with ModelStub() as stub:
        process = stub.process
        assert stub.stats()["requests"] == 0
    assert process.poll() is not None
