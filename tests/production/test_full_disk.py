"""The SQLite database's disk fills up: a clear JSON 503, nothing half-written, service back once space is."""

import json
import os
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pytest

from core.resilience import READ_ONLY_MESSAGE
from tests.harness.server import (
    RUN_BODY,
    AppServer,
    echo_flow,
    prepare_site,
    query_total_uses,
    request,
    site_env,
    upload_echo_flow,
)

pytestmark = [pytest.mark.own_site]


@pytest.fixture
def small_disk():
    """A 16 MiB tmpfs of our own, so filling it harms nothing else."""
    mount_point = Path(tempfile.mkdtemp(prefix="langflow-disk-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount_point)], capture_output=True, text=True)
    if mounted.returncode != 0:
        mount_point.rmdir()
        if os.environ.get("CI"):
            pytest.fail(f"CI runs as root and must be able to mount a tmpfs: {mounted.stderr}")
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
        mount_point.rmdir()


def fill(disk: Path) -> Path:
    """Write a file until the disk refuses another byte."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as handle:
        chunk = b"\0" * 65536
        while chunk:
            try:
                handle.write(chunk)
            except OSError:
                chunk = chunk[: len(chunk) // 2]
    return filler


def test_a_full_disk_answers_json_503_and_leaves_the_database_intact(small_disk, tmp_path):
    database = small_disk / "db.sqlite3"
    env = site_env(tmp_path / "data", DATABASE_URL=f"sqlite:///{database}")
    raw_key = prepare_site(env)
    headers = {"x-api-key": raw_key, "Content-Type": "application/json"}
    big_flow = {**echo_flow(), "name": "Big", "endpoint_name": "big", "description": "x" * 1_000_000}
    with AppServer(env, workers=2) as server:
        run_url = server.url(f"/api/v1/run/{upload_echo_flow(server, raw_key)}?stream=false")
        uses_before = query_total_uses(env)["load"]

        filler = fill(small_disk)
        # A run writes one counter in place: it may still fit in the WAL's free frames, or not.
        runs = [request("POST", run_url, headers=headers, body=RUN_BODY.encode()) for _ in range(3)]
        # A 1 MB flow needs new pages, which the full disk cannot give.
        big = request("POST", server.url("/api/v1/flows/"), headers=headers, body=json.dumps(big_flow).encode())
        for reply in [*runs, big]:
            assert reply.status in (200, 503), reply.body[:300]
            if reply.status == 503:
                assert reply.json() == {"detail": READ_ONLY_MESSAGE}
        assert big.status == 503

        filler.unlink()
        assert request("POST", server.url("/api/v1/flows/"), headers=headers, body=json.dumps(big_flow).encode()).status == 201
        assert request("POST", run_url, headers=headers, body=RUN_BODY.encode()).status == 200

    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert sorted(row[0] for row in connection.execute("SELECT name FROM flows_flow")) == ["Big", "Echo"]
    # A run's only write is its use: a refused run counted nothing, a served one counted one.
    # The refused upload may have counted its use before its INSERT failed (no transaction
    # spans a request), so it adds 0 or 1; the two requests after the disk was freed add 2.
    counted = query_total_uses(env)["load"] - uses_before
    served_runs = sum(reply.status == 200 for reply in runs)
    assert served_runs + 2 <= counted <= served_runs + 3
