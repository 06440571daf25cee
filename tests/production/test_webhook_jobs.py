"""Webhook runs on the real server: gunicorn with the job workers `make run` starts beside it.

A job worker killed (SIGKILL) in the middle of a run is restarted, and the run still completes,
recorded once; a burst of 1,000 webhook calls all run, none twice, none lost.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.harness.modelstub import ModelStub
from tests.harness.server import AppServer, manage, prepare_site, request, run_load, site_env
from tests.webhooks.conftest import webhook_flow_data

pytestmark = pytest.mark.own_site

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "langflow"
ACCEPTED = {"message": "Task started in the background", "status": "in progress"}


def create_flow(server: AppServer, key: str, data: dict, name: str) -> str:
    reply = request("POST", server.url("/api/v1/flows/"), headers={"x-api-key": key, "Content-Type": "application/json"},
                    body=json.dumps({"name": name, "data": data}).encode())
    assert reply.status == 201, reply.body[:500]
    return reply.json()["id"]


def slow_model_flow(delay: float) -> dict:
    """Langflow's Basic Prompting with a Webhook in place of its Chat Input, its model the stub
    answering after ``delay`` seconds: Webhook -> Language Model -> Chat Output."""
    data = json.loads((FIXTURES / "basic_prompting.json").read_text())["data"]
    for node in data["nodes"]:
        kind = node["data"].get("type")
        if kind == "ChatInput":
            node["data"]["type"] = "Webhook"
            node["data"]["node"]["template"] = {"data": {"type": "str", "value": ""}}
        if kind == "LanguageModelComponent":
            node["data"]["node"]["template"]["model_name"]["value"] = f"stub,delay={delay}"
    for edge in data["edges"]:
        if edge["data"]["sourceHandle"]["name"] == "message":
            edge["data"]["sourceHandle"]["name"] = "output_data"
    return data


def runs(server: AppServer, key: str, flow_id: str, size: int = 100) -> list[dict]:
    found, page = [], 1
    while True:
        reply = request("GET", server.url(f"/api/v1/webhook/{flow_id}/runs?page={page}&size={size}"),
                        headers={"x-api-key": key})
        assert reply.status == 200, reply.body[:300]
        batch = reply.json()["runs"]
        found += batch
        if len(batch) < size:
            return found
        page += 1


def wait_until(predicate, timeout: float, what: str, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def chat_sessions(env: dict, flow_id: str) -> dict[str, int]:
    """How many chat messages each session (one per webhook run) of the flow has, from the database."""
    code = ("import json; from django.db.models import Count; from flows.models import Message; "
            f"rows = Message.objects.filter(flow_id='{flow_id}').values('session_id').annotate(n=Count('id')); "
            "print(json.dumps({row['session_id']: row['n'] for row in rows}))")
    return json.loads(manage(env, "shell", "-v", "0", "-c", code).strip().splitlines()[-1])


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """The site's database: SQLite in its DATA_DIR, or a throwaway PostgreSQL database (as workers on
    several machines would share)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'db.sqlite3'}"
        return
    from tests.harness.postgres import postgres_database

    admin_url = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    try:
        url, drop = postgres_database(admin_url)
    except Exception as error:  # noqa: BLE001 - psycopg's many connection errors
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL at {admin_url}: {error}")
    try:
        yield url
    finally:
        drop()


def test_a_job_worker_killed_mid_run_is_restarted_and_the_run_completes_once(tmp_path, database_url):
    with ModelStub() as stub:
        env = site_env(tmp_path / "data", DATABASE_URL=database_url, OPENAI_BASE_URL=stub.base_url,
                       OPENAI_API_KEY="stub-key", JOB_WORKERS="1", WEBHOOK_LEASE_SECONDS="3", WEBHOOK_RETRY_DELAY="1")
        key = prepare_site(env)
        with AppServer(env, workers=1) as server:
            flow_id = create_flow(server, key, slow_model_flow(delay=4), "Slow hook")
            [victim] = wait_until(server.job_worker_pids, 20, "the job worker")
            reply = request("POST", server.url(f"/api/v1/webhook/{flow_id}"), headers={"x-api-key": key},
                            body=b'{"text": "hello"}')
            assert (reply.status, reply.json()) == (202, ACCEPTED)
            wait_until(lambda: runs(server, key, flow_id)[0]["status"] == "running", 20, "the run to start")
            wait_until(lambda: request("GET", f"{stub.base_url.removesuffix('/v1')}/stats").json()["requests"] >= 1,
                       10, "the model call")
            os.kill(victim, signal.SIGKILL)

            [replacement] = wait_until(lambda: [pid for pid in server.job_worker_pids() if pid != victim], 20,
                                       "gunicorn to restart the job worker")
            assert replacement != victim
            [run] = wait_until(lambda: [r for r in runs(server, key, flow_id) if r["status"] in ("done", "failed")],
                               60, "the run to finish")
            assert run["status"] == "done", run
            assert run["attempts"] == 2  # the killed attempt, then the one that finished
            assert run["error"] == ""
            assert chat_sessions(env, flow_id) == {run["id"]: 1}  # recorded once
            assert request("GET", f"{stub.base_url.removesuffix('/v1')}/stats").json()["requests"] == 2


def test_a_burst_of_a_thousand_calls_all_run_none_twice_none_lost(tmp_path):
    env = site_env(tmp_path / "data", JOB_WORKERS="2")
    key = prepare_site(env)
    with AppServer(env, workers=2) as server:
        flow_id = create_flow(server, key, webhook_flow_data(), "Burst hook")
        started = time.monotonic()
        result = run_load("POST", server.url(f"/api/v1/webhook/{flow_id}"), headers={"x-api-key": key},
                          body=b'{"text": "ping"}', clients=16, seconds=90, max_requests=1000, timeout=30)
        assert result.failures == []
        assert result.count(202) == 1000, set(result.statuses())
        accepted_in = time.monotonic() - started

        def finished() -> list[dict] | None:
            found = runs(server, key, flow_id)
            return found if len(found) == 1000 and all(r["status"] == "done" for r in found) else None

        found = wait_until(finished, 100, "every run to be done", interval=2)
        assert len({r["id"] for r in found}) == 1000
        assert all(r["attempts"] == 1 for r in found)
        sessions = chat_sessions(env, flow_id)
        assert len(sessions) == 1000 and set(sessions.values()) == {1}  # each run recorded once
        assert set(sessions) == {r["id"] for r in found}
        print(f"1,000 calls accepted in {accepted_in:.1f} s, all run in {time.monotonic() - started:.1f} s")
