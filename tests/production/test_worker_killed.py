"""A worker killed in the middle of load: the others keep serving, nothing is half-written."""

import os
import signal
import sqlite3
import threading
import time

import pytest

from tests.harness.server import RUN_BODY, query_total_uses, run_load

pytestmark = [pytest.mark.own_site]


def test_killed_worker_is_replaced_and_every_use_is_counted_once(served_site):
    server, env, raw_key, run_url = served_site
    headers = {"x-api-key": raw_key, "Content-Type": "application/json"}
    before = query_total_uses(env)["load"]
    outcome = {}
    load = threading.Thread(
        target=lambda: outcome.setdefault(
            "result", run_load("POST", run_url, headers=headers, body=RUN_BODY.encode(), clients=6, seconds=10, max_requests=5000)
        )
    )
    started = time.monotonic()
    load.start()
    time.sleep(3)
    victim = server.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic() - started
    replacement = server.wait_for_workers(2, excluding={victim}, timeout=20)
    replaced_at = time.monotonic() - started
    load.join(timeout=60)
    result = outcome["result"]

    # Only the requests the victim was serving can be lost (an async worker serves several at
    # once, at most one per client here), and only at the moment it died.
    assert len(result.failures) <= 6, result.failures
    assert all(killed_at - 0.5 <= at <= replaced_at + 1 for at, _ in result.failures), (killed_at, result.failures)
    assert set(result.statuses()) == {200}
    assert len(result.statuses(until=killed_at)) > 0
    assert len(result.statuses(since=replaced_at + 0.5)) > 0, "requests after the replacement must succeed"
    assert victim not in replacement

    # Each use is one single-statement UPDATE: committed whole or not at all. The victim's
    # request may have committed before the kill although its client saw no answer.
    served = result.count(200)
    counted = query_total_uses(env)["load"] - before
    assert served <= counted <= served + len(result.failures)
    with sqlite3.connect(env["DATABASE_URL"].removeprefix("sqlite:///")) as database:
        assert database.execute("PRAGMA integrity_check").fetchone() == ("ok",)
