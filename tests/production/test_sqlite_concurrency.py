"""Concurrent writers in separate processes never see "database is locked" on SQLite."""

import json
import subprocess
import time

import pytest

from tests.harness.server import PYTHON, ROOT, query_total_uses

pytestmark = [pytest.mark.own_site]

WRITERS = 4
ITERATIONS = 40


def run_writers(env: dict, mode: str) -> list[dict]:
    start_at = time.time() + 3  # after every process has set Django up
    processes = [
        subprocess.Popen(
            [PYTHON, "-m", "tests.production.sqlite_writers", mode, str(ITERATIONS), str(start_at), "load"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(WRITERS)
    ]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_concurrent_read_then_write_transactions_all_commit_without_database_is_locked(site):
    env, _ = site
    results = run_writers(env, "IMMEDIATE")
    assert [r["locked"] for r in results] == [0] * WRITERS
    assert sum(r["committed"] for r in results) == WRITERS * ITERATIONS
    assert query_total_uses(env)["load"] == WRITERS * ITERATIONS


def test_the_same_writers_in_deferred_mode_do_hit_database_is_locked(site):
    """The control: with Django's own backend and deferred transactions this workload fails, so
    the test above means something."""
    env, _ = site
    results = run_writers(env, "DEFERRED")
    assert sum(r["locked"] for r in results) > 0
    assert query_total_uses(env)["load"] == sum(r["committed"] for r in results)
