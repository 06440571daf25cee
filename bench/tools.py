"""Helpers shared by the bench sections (bench/run.py, bench/iobound.py): wrk and throwaway databases."""

from __future__ import annotations

import json
import os
import subprocess

from tests.harness.postgres import postgres_database  # noqa: F401  (re-exported for the bench sections)
from tests.harness.server import ROOT

WRK_TIMEOUT = "10s"   # slower than this counts as a time-out; p99 is reported too


def wrk(url: str, *, connections: int, seconds: int, method: str = "GET", body: str = "", api_key: str = "") -> dict:
    """Run wrk against ``url`` (loopback only) and return its JSON summary."""
    assert url.startswith("http://127.0.0.1:")
    env = {**os.environ, "WRK_METHOD": method, "WRK_BODY": body, "WRK_API_KEY": api_key}
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", WRK_TIMEOUT, "-s", str(ROOT / "bench" / "wrk.lua"), url]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 60)
    line = next((line for line in result.stdout.splitlines() if line.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{result.stdout}\n{result.stderr}")
    summary = json.loads(line.removeprefix("WRK_JSON "))
    summary["rps"] = summary["requests"] / (summary["duration_us"] / 1e6)
    summary["error_count"] = sum(summary["errors"].values())
    return summary
