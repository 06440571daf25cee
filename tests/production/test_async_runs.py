"""Runs awaited on the event loop, against the real server (gunicorn + uvicorn workers) and a real
model stub: a client that leaves cancels the model call, a model call has one total deadline and
a size cap, and a reload or a stop lets the streams in flight finish.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.harness.modelstub import ModelStub
from tests.harness.server import AppServer, prepare_site, query_total_uses, request, site_env

pytestmark = pytest.mark.own_site

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "langflow"
NODE = "LanguageModelComponent-FLeYF"
BODY = {"input_value": "hello", "input_type": "chat", "output_type": "chat"}


def model(**knobs) -> dict:
    """A tweak choosing the stub's behaviour for one run."""
    return {NODE: {"model_name": "stub," + ",".join(f"{name}={value}" for name, value in knobs.items())}}


class Site:
    def __init__(self, server: AppServer, env: dict, key: str, flow_id: str, stub: ModelStub):
        self.server, self.env, self.key, self.flow_id, self.stub = server, env, key, flow_id, stub

    def headers(self) -> dict:
        return {"x-api-key": self.key, "Content-Type": "application/json"}

    def run(self, *, stream: bool = False, timeout: float = 30, **knobs):
        body = {**BODY, "tweaks": model(**knobs)} if knobs else BODY
        return request("POST", self.server.url(f"/api/v1/run/{self.flow_id}?stream={str(stream).lower()}"),
                       headers=self.headers(), body=json.dumps(body).encode(), timeout=timeout)


def start_site(tmp_path, stub: ModelStub, **env_overrides) -> tuple[AppServer, dict, str]:
    env = site_env(tmp_path / "data", OPENAI_BASE_URL=stub.base_url, OPENAI_API_KEY="stub-key", **env_overrides)
    return AppServer(env, workers=2), env, prepare_site(env)


def upload_prompting_flow(server: AppServer, key: str) -> str:
    flow = json.loads((FIXTURES / "basic_prompting.json").read_text())
    reply = request("POST", server.url("/api/v1/flows/"), headers={"x-api-key": key, "Content-Type": "application/json"},
                    body=json.dumps(flow).encode())
    assert reply.status == 201, reply.body[:500]
    return reply.json()["id"]


@pytest.fixture
def site(tmp_path):
    with ModelStub() as stub:
        server, env, key = start_site(tmp_path, stub, OPENAI_TIMEOUT="2", MODEL_MAX_RESPONSE_BYTES="100000")
        with server:
            yield Site(server, env, key, upload_prompting_flow(server, key), stub)


def events(body: bytes) -> list[dict]:
    return [json.loads(block) for block in body.decode().split("\n\n") if block.strip()]


def send_stream(site: Site, **knobs) -> socket.socket:
    """Send a streamed run on a raw socket."""
    body = json.dumps({**BODY, "tweaks": model(**knobs)}).encode()
    sock = socket.create_connection(("127.0.0.1", site.server.port), timeout=10)
    sock.sendall(
        f"POST /api/v1/run/{site.flow_id}?stream=true HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {site.key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    )
    return sock


def until_first_token(sock: socket.socket) -> bytes:
    received = b""
    while b'"token"' not in received:
        chunk = sock.recv(65536)
        assert chunk, received
        received += chunk
    return received


def open_stream(site: Site, **knobs) -> socket.socket:
    """A streamed run whose answer has begun."""
    sock = send_stream(site, **knobs)
    until_first_token(sock)
    return sock


def wait_for(condition, timeout: float, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    return condition()


def test_a_client_that_leaves_mid_stream_cancels_the_model_call_and_the_use_still_counts(site):
    uses_before = query_total_uses(site.env)["load"]
    site.stub.reset()
    sock = open_stream(site, stream_seconds=20, chunks=200)
    assert site.stub.stats()["in_flight"] == 1
    sock.close()
    left_at = time.monotonic()
    stats = wait_for(lambda: (s := site.stub.stats())["disconnected"] == 1 and s, timeout=1.0)
    assert stats, site.stub.stats()
    assert time.monotonic() - left_at <= 1.0
    assert stats["in_flight"] == 0 and stats["completed"] == 0
    assert query_total_uses(site.env)["load"] == uses_before + 1


def test_openai_timeout_is_one_deadline_for_the_whole_call_even_when_bytes_trickle(site):
    reply = site.run(trickle=0.3)
    assert reply.status == 502
    assert reply.headers["content-type"] == "application/json"
    assert reply.json()["detail"] == f"Model call failed in node {NODE}: the model server did not answer within 2 s"
    assert 1.9 <= reply.seconds < 4

    streamed = site.run(stream=True, trickle=0.3)
    assert streamed.status == 200
    last = events(streamed.body)[-1]
    assert last == {"event": "error", "data": {"error": f"Model call failed in node {NODE}: the model server did "
                                                        "not answer within 2 s", "status_code": 502}}
    assert streamed.seconds < 4


def test_a_model_answer_over_the_cap_is_a_502_naming_the_node(site):
    reply = site.run(answer_bytes=1_000_000)
    assert reply.status == 502
    assert reply.json()["detail"] == (f"Model call failed in node {NODE}: the model's answer is larger than "
                                      "100,000 bytes (MODEL_MAX_RESPONSE_BYTES)")
    streamed = site.run(stream=True, answer_bytes=1_000_000, chunks=100)
    last = events(streamed.body)[-1]
    assert last["event"] == "error" and "MODEL_MAX_RESPONSE_BYTES" in last["data"]["error"]
    assert len(streamed.body) < 200_000  # the cap held: the answer was not passed on whole
    assert site.run(answer_bytes=50_000).status == 200  # under the cap


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise ValueError(pid)


def test_a_run_waiting_on_the_model_holds_no_thread_and_the_rest_of_the_site_stays_served(site):
    """Forty streams wait on a slow model: the workers' threads do not grow with them, and
    whoami and plain runs beside them answer at once."""
    idle = {pid: threads_of(pid) for pid in site.server.worker_pids()}
    sockets = [open_stream(site, stream_seconds=6, chunks=6) for _ in range(40)]
    try:
        busy = {pid: threads_of(pid) for pid in site.server.worker_pids()}
        # The pool of DB_POOL_SIZE database threads and a few of the runtime's, never one per stream.
        assert all(busy[pid] <= idle[pid] + 12 for pid in busy), (idle, busy)
        whoami = request("GET", site.server.url("/api/v1/users/whoami"), headers={"x-api-key": site.key})
        assert whoami.status == 200 and whoami.seconds < 0.5
        quick = site.run(delay=0)
        assert quick.status == 200 and quick.seconds < 0.5
    finally:
        for sock in sockets:
            sock.close()


def read_all(sock: socket.socket, results: list, index: int) -> None:
    received = b""
    sock.settimeout(30)
    try:
        while not received.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    except OSError as error:
        results[index] = f"{type(error).__name__}: {error}"
        return
    results[index] = received


@pytest.fixture
def patient_site(tmp_path):
    with ModelStub() as stub:
        server, env, key = start_site(tmp_path, stub, OPENAI_TIMEOUT="30")
        with server:
            yield Site(server, env, key, upload_prompting_flow(server, key), stub)


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM], ids=["reload", "stop"])
def test_a_reload_or_a_stop_lets_the_streams_in_flight_finish(patient_site, sig):
    site = patient_site
    sockets = [send_stream(site, stream_seconds=4, chunks=8) for _ in range(20)]
    for sock in sockets:
        until_first_token(sock)
    results: list = [None] * len(sockets)
    readers = [threading.Thread(target=read_all, args=(sock, results, i)) for i, sock in enumerate(sockets)]
    for reader in readers:
        reader.start()
    old_workers = set(site.server.worker_pids())
    site.server.process.send_signal(sig)
    if sig == signal.SIGHUP:
        site.server.wait_for_workers(2, excluding=old_workers, timeout=30)
        during = site.run(delay=0)  # a new connection, answered by a new worker
        assert during.status == 200
    for reader in readers:
        reader.join(timeout=30)
    for sock in sockets:
        sock.close()
    for result in results:
        assert isinstance(result, bytes), result
        assert b'"event": "end"' in result, result[-300:]
    if sig == signal.SIGTERM:
        assert site.server.process.wait(timeout=30) == 0


def connections_to(admin_url: str, database: str) -> int:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as connection:
        return connection.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,)).fetchone()[0]


def test_postgresql_connections_stay_within_the_pool_whatever_runs_are_in_flight(tmp_path):
    """Two workers with DB_POOL_SIZE=3: a hundred streams in flight, and whoami and plain runs
    beside them, never hold more than 2 x 3 connections."""
    from tests.harness.postgres import postgres_database

    admin_url = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    try:
        url, drop = postgres_database(admin_url)
    except Exception as error:  # noqa: BLE001 - psycopg's many connection errors
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL at {admin_url}: {error}")
    database = url.rsplit("/", 1)[1]
    try:
        with ModelStub() as stub:
            # The web workers' connections only: a job worker (JOB_WORKERS) holds pooled ones of its own.
            server, env, key = start_site(tmp_path, stub, DATABASE_URL=url, DB_POOL_SIZE="3", OPENAI_TIMEOUT="30",
                                          JOB_WORKERS="0")
            with server:
                site = Site(server, env, key, upload_prompting_flow(server, key), stub)
                sockets = [send_stream(site, stream_seconds=4, chunks=8) for _ in range(100)]
                seen = []
                for sock in sockets:
                    until_first_token(sock)
                    seen.append(connections_to(admin_url, database))
                beside = [site.run(delay=0) for _ in range(5)]
                seen.append(connections_to(admin_url, database))
                assert all(reply.status == 200 for reply in beside)
                results: list = [None] * len(sockets)
                readers = [threading.Thread(target=read_all, args=(sock, results, i)) for i, sock in enumerate(sockets)]
                for reader in readers:
                    reader.start()
                for reader in readers:
                    reader.join(timeout=30)
                assert all(isinstance(r, bytes) and b'"event": "end"' in r for r in results)
                assert max(seen) <= 2 * 3, seen
                assert query_total_uses(env)["load"] >= 106
    finally:
        drop()


def test_a_chunked_request_body_is_read_whole(site):
    """No Content-Length: the body still arrives, inputs and tweaks included (it was read as empty)."""
    body = json.dumps({"input_value": "sent in chunks", "tweaks": model(delay=0)}).encode()
    half = len(body) // 2
    with socket.create_connection(("127.0.0.1", site.server.port), timeout=10) as sock:
        sock.sendall(
            f"POST /api/v1/run/{site.flow_id} HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {site.key}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode()
            + b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (half, body[:half], len(body) - half, body[half:])
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, content = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"stub: sent in chunks" in content


def test_a_chunked_body_over_the_limit_is_refused_with_json(site):
    size = 6 * 1024 * 1024  # DATA_UPLOAD_MAX_MEMORY_SIZE is 5 MiB
    with socket.create_connection(("127.0.0.1", site.server.port), timeout=20) as sock:
        sock.sendall(
            f"POST /api/v1/run/{site.flow_id} HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {site.key}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode()
        )
        piece = b'"' + b"x" * (1024 * 1024 - 2) + b'"'
        try:
            for _ in range(size // len(piece)):
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server may answer and close before the whole body is sent
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, content = answer.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    assert 400 <= status < 500, head
    assert b"content-type: application/json" in head.lower()
    assert b"detail" in content
