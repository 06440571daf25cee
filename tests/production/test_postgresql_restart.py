"""PostgreSQL restarted during load: a JSON 503 during the outage, then recovery without an app restart."""

import os
import threading
import time

import pytest

from core.resilience import RETRY_AFTER_SECONDS, UNAVAILABLE_MESSAGE
from tests.harness.server import RUN_BODY, AppServer, prepare_site, run_load, site_env, upload_echo_flow

from .postgres_cluster import PostgresCluster, postgres_bin_dir

pytestmark = [pytest.mark.own_site]


@pytest.fixture
def cluster():
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL's server binaries (/usr/lib/postgresql/*/bin) must be installed in CI")
        pytest.skip("PostgreSQL's server binaries are not installed (/usr/lib/postgresql/*/bin/initdb)")
    own = PostgresCluster(bin_dir)
    try:
        yield own.create()
    finally:
        own.destroy()


def test_requests_fail_with_json_503_while_postgresql_restarts_then_recover(cluster, tmp_path):
    env = site_env(tmp_path / "data", DATABASE_URL=cluster.url)
    raw_key = prepare_site(env)
    with AppServer(env, workers=2) as server:
        run_url = server.url(f"/api/v1/run/{upload_echo_flow(server, raw_key)}?stream=false")
        workers = set(server.worker_pids())
        stop = threading.Event()
        outcome = {}
        headers = {"x-api-key": raw_key, "Content-Type": "application/json"}
        load = threading.Thread(
            target=lambda: outcome.setdefault(
                "result",
                run_load("POST", run_url, headers=headers, body=RUN_BODY.encode(), clients=4, seconds=40, stop=stop),
            )
        )
        started = time.monotonic()
        load.start()
        time.sleep(2)
        cluster.stop()
        down_at = time.monotonic() - started
        time.sleep(6)  # longer than DB_POOL_TIMEOUT (3 s): requests waiting for a connection give up with 503
        cluster.start()
        up_at = time.monotonic() - started
        time.sleep(4)
        stop.set()
        load.join(timeout=30)
        assert set(server.worker_pids()) == workers, "the app servers were not restarted"
        server_log = server.log_path.read_text(errors="replace")
    result = outcome["result"]

    assert result.failures == [], "gunicorn itself must keep answering"
    assert set(result.statuses()) <= {200, 503}, server_errors(server_log)
    assert result.statuses(until=down_at), "requests succeeded before the restart"
    outage = [reply for at, reply in result.replies if reply.status == 503]
    assert outage, "the outage must be visible as 503s"
    for reply in outage:
        assert reply.json() == {"detail": UNAVAILABLE_MESSAGE}
        assert reply.headers["retry-after"] == RETRY_AFTER_SECONDS
        assert reply.headers["content-type"] == "application/json"
    # Once PostgreSQL is back, each worker's pool reconnects by itself (connections are checked when taken).
    recovered = result.statuses(since=up_at + 1)
    assert recovered and set(recovered) == {200}


def server_errors(log: str, lines_after: int = 40) -> str:
    """The server's own error reports (Django logs each 500 as "Internal Server Error", uvicorn an
    exception that left the application as "Exception in ASGI application", each with its trace),
    for a failure to show what the site answered 500 for."""
    lines = log.splitlines()
    markers = ("Internal Server Error", "Exception in ASGI application")
    found = [index for index, line in enumerate(lines) if any(marker in line for marker in markers)]
    return "\n".join("\n".join(lines[index:index + lines_after]) for index in found[:3]) or "no error in the server log"
