"""The model server of a flow never answers: the run times out with a JSON 502/504 and the worker is freed."""

import socket
import threading
import time

import pytest

from tests.harness.server import FIXTURES, LOOPBACK, RUN_BODY, AppServer, prepare_site, request, site_env, upload_echo_flow

pytestmark = [pytest.mark.own_site]

MODEL_TIMEOUT = 2


@pytest.fixture
def silent_model_server():
    """Accept connections on loopback and never answer a byte; return its base URL."""
    listener = socket.socket()
    listener.bind((LOOPBACK, 0))
    listener.listen(16)
    listener.settimeout(0.2)
    held, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://{LOOPBACK}:{listener.getsockname()[1]}/v1", held
    stop.set()
    thread.join(timeout=5)
    for connection in held:
        connection.close()
    listener.close()


def test_a_hanging_model_server_times_out_as_json_and_frees_the_worker(silent_model_server, tmp_path):
    prompting = FIXTURES / "basic_prompting.json"
    base_url, held = silent_model_server
    env = site_env(tmp_path / "data", OPENAI_BASE_URL=base_url, OPENAI_API_KEY="sk-test-never-sent-anywhere-else",
                   OPENAI_TIMEOUT=str(MODEL_TIMEOUT))
    raw_key = prepare_site(env)
    headers = {"x-api-key": raw_key, "Content-Type": "application/json"}
    with AppServer(env, workers=2) as server:
        echo_url = server.url(f"/api/v1/run/{upload_echo_flow(server, raw_key)}?stream=false")
        created = request("POST", server.url("/api/v1/flows/"), headers=headers, body=prompting.read_bytes())
        assert created.status == 201, created.body[:300]
        model_url = server.url(f"/api/v1/run/{created.json()['id']}?stream=false")
        workers = set(server.worker_pids())

        # Two hanging runs at once: both workers are stuck on the model server.
        replies = [None, None]

        def run(slot):
            replies[slot] = request("POST", model_url, headers=headers, body=RUN_BODY.encode(), timeout=30)

        threads = [threading.Thread(target=run, args=(slot,)) for slot in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=40)

        for reply in replies:
            assert reply.status in (502, 504)
            assert reply.headers["content-type"] == "application/json"
            assert f"did not answer within {MODEL_TIMEOUT} s" in reply.json()["detail"]
            assert MODEL_TIMEOUT - 0.5 <= reply.seconds <= MODEL_TIMEOUT + 5
        assert held, "the runs did reach the model server"

        started = time.monotonic()
        after = request("POST", echo_url, headers=headers, body=RUN_BODY.encode())
        assert after.status == 200 and time.monotonic() - started < MODEL_TIMEOUT
        assert set(server.worker_pids()) == workers, "no worker had to be killed by gunicorn's own timeout"
