"""`make bench`: start the real server, load it from a second process, print ratios.

Every figure is a ratio to a baseline measured in the same run (timings on a shared 2-core
machine vary from run to run), and every comparison is interleaved. Results go to the table
printed at the end and to bench/results/latest.json (git-ignored).

1. run throughput vs the ceiling (a bare DRF view, one SQL query), 16 clients, goal >= 0.5;
   1b. the same run with its nodes told not to store the chat messages (Langflow's
   ``should_store_message``), reported: the run's path apart from chat memory;
2. key verification with 10 vs 1,000,000 keys, goal <= 1.2;
3. a wrong secret, an unknown id and a malformed key each cost <= a valid key;
4. our authentication vs djangorestframework-api-key's HasAPIKey, goal <= 1.0 (as fast or faster);
5. 64 clients for 60 s on SQLite and on PostgreSQL: no errors, no time-outs, p99, and
   total_uses equal to the requests served;
6. resident memory per worker after the load;
then the I/O-bound section (bench/iobound.py): runs that wait on a model (a local stub).

Options (environment): BENCH_QUICK=1 shortens every phase (a smoke run, not for the README);
BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres) is where a throwaway
database is created and dropped; BENCH_SKIP_POSTGRES=1 skips that half; BENCH_ONLY=iobound runs
only the I/O-bound section, BENCH_ONLY=classic everything else (a partial run writes
latest-<section>.json, not latest.json); bench/iobound.py lists the section's own options.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import iobound  # noqa: E402
from bench.tools import postgres_database, wrk  # noqa: E402
from tests.harness.modelstub import raise_open_file_limit  # noqa: E402
from tests.harness.server import (  # noqa: E402
    PYTHON,
    ROOT,
    RUN_BODY,
    AppServer,
    prepare_site,
    query_total_uses,
    resident_mib,
    site_env,
    upload_echo_flow,
)

QUICK = os.environ.get("BENCH_QUICK") == "1"
RESULTS = ROOT / "bench" / "results"

THROUGHPUT_ROUNDS = 3 if QUICK else 6  # each of the three sides goes first, second and last alike
# The echo run with its two chat messages not stored: a tweak of each Chat node's own switch.
UNSTORED_RUN_BODY = json.dumps({
    **json.loads(RUN_BODY),
    "tweaks": {node: {"should_store_message": False} for node in ("ChatInput-b6UCc", "ChatOutput-yK0AU")},
})
THROUGHPUT_SECONDS = 3 if QUICK else 8
LOAD_SECONDS = 10 if QUICK else 60


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> dict:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024 / 1024),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def served_runs(server: AppServer, since_offset: int) -> int:
    """Count the runs answered 200 since ``since_offset`` of the server's log (its access lines)."""
    with open(server.log_path, "rb") as handle:
        handle.seek(since_offset)
        text = handle.read().decode(errors="replace")
    # uvicorn's access lines: 127.0.0.1:53210 - "POST /api/v1/run/<id>?stream=false HTTP/1.1" 200
    return len(re.findall(r'"POST /api/v1/run/[^ ]+ HTTP/1\.[01]" 200\b', text))


def wait_until_idle(server: AppServer, quiet_seconds: float = 2.0, limit: float = 60.0) -> None:
    """Return once gunicorn's log has not grown for ``quiet_seconds`` (every answer logged)."""
    deadline = time.monotonic() + limit
    size, quiet_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        current = server.log_path.stat().st_size
        if current != size:
            size, quiet_since = current, time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_seconds:
            return
        time.sleep(0.2)
    raise RuntimeError("the server was still answering a minute after the load stopped")


def benchmark_throughput(server: AppServer, run_url: str, api_key: str) -> dict:
    """Benchmark 1 (and 1b): run, and run storing no chat messages, vs ceiling; 16 clients,
    interleaved rounds in rotating order."""
    ceiling_url = server.url("/api/v1/bench/ceiling")
    sides = [("ceiling", ceiling_url, "", RUN_BODY), ("run", run_url, api_key, RUN_BODY),
             ("unstored", run_url, api_key, UNSTORED_RUN_BODY)]
    rounds = []
    for number in range(THROUGHPUT_ROUNDS):
        measured = {}
        for name, url, key, body in sides[number % len(sides):] + sides[:number % len(sides)]:
            measured[name] = wrk(url, connections=16, seconds=THROUGHPUT_SECONDS, method="POST", body=body, api_key=key)
            assert measured[name]["statuses"].keys() == {"200"}, (name, measured[name]["statuses"])
        rounds.append(measured)
        log(f"  round {number + 1}: run {measured['run']['rps']:.0f}/s, unstored {measured['unstored']['rps']:.0f}/s,"
            f" ceiling {measured['ceiling']['rps']:.0f}/s")
    return {
        "run_rps": statistics.median(r["run"]["rps"] for r in rounds),
        "unstored_rps": statistics.median(r["unstored"]["rps"] for r in rounds),
        "ceiling_rps": statistics.median(r["ceiling"]["rps"] for r in rounds),
        "ratio": statistics.median(r["run"]["rps"] / r["ceiling"]["rps"] for r in rounds),
        "unstored_ratio": statistics.median(r["unstored"]["rps"] / r["ceiling"]["rps"] for r in rounds),
        "errors": sum(r[name]["error_count"] for r in rounds for name in r),
    }


def benchmark_load(server: AppServer, run_url: str, api_key: str, env: dict) -> dict:
    """Benchmark 5 (and 6): 64 clients; every request served must be counted exactly once.

    When wrk stops, it drops the requests it has in flight (at most one per connection). The
    server has already counted each of those uses (a use is counted when the key is checked,
    and a client that leaves does not undo it) but never answers them, so no access line
    shows them: total_uses may exceed the requests served by at most the 64 connections.
    """
    before = query_total_uses(env)["load"]
    offset = server.log_path.stat().st_size
    ceiling = wrk(server.url("/api/v1/bench/ceiling"), connections=64, seconds=max(5, LOAD_SECONDS // 6), method="POST", body=RUN_BODY)
    summary = wrk(run_url, connections=64, seconds=LOAD_SECONDS, method="POST", body=RUN_BODY, api_key=api_key)
    # wrk stops at its deadline with requests still queued in the listen backlog; the workers
    # serve those too (and count them), so wait until they are idle before counting.
    wait_until_idle(server)
    served = served_runs(server, offset)
    counted = query_total_uses(env)["load"] - before
    non_200 = sum(n for status, n in summary["statuses"].items() if status != "200")
    return {
        "clients": 64,
        "seconds": LOAD_SECONDS,
        "requests_seen_by_client": summary["requests"],
        "rps": summary["rps"],
        "ratio_to_ceiling_at_64": summary["rps"] / ceiling["rps"],
        "errors": summary["error_count"] + non_200,
        "timeouts": summary["errors"]["timeout"],
        "p50_ms": summary["latency_us"]["p50"] / 1000,
        "p99_ms": summary["latency_us"]["p99"] / 1000,
        "max_ms": summary["latency_us"]["max"] / 1000,
        "served": served,
        "total_uses_added": counted,
        "uses_match_served": served <= counted <= served + 64,
        "rss_mib_per_worker": [round(resident_mib(pid), 1) for pid in server.worker_pids()],
    }


def server_phase(name: str, env: dict, *, with_throughput: bool) -> dict:
    api_key = prepare_site(env)
    with AppServer({**env, "BENCH_ENDPOINTS": "1"}, workers=2) as server:
        flow_id = upload_echo_flow(server, api_key)
        run_url = server.url(f"/api/v1/run/{flow_id}?stream=false")
        time.sleep(3)  # a worker's memory peaks while it starts, then settles
        results = {"rss_mib_per_worker_at_start": [round(resident_mib(pid), 1) for pid in server.worker_pids()]}
        if with_throughput:
            log(f"{name}: benchmark 1, run vs ceiling, 16 clients")
            results["throughput"] = benchmark_throughput(server, run_url, api_key)
        log(f"{name}: benchmark 5, 64 clients for {LOAD_SECONDS} s")
        results["load"] = benchmark_load(server, run_url, api_key, env)
    return results


def auth_costs(data_dir: Path) -> dict:
    log("benchmarks 2-4 (in process): filling a database with 1,000,000 keys first")
    env = {**site_env(data_dir), "DJANGO_SETTINGS_MODULE": "bench.settings", "PYTHONPATH": str(ROOT)}
    if QUICK:
        env.update(BENCH_LARGE_KEYS="50000", BENCH_ROUNDS="3", BENCH_CALLS="100")
    result = subprocess.run([PYTHON, "-m", "bench.auth_costs"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-4000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def goals(results: dict) -> list[tuple[str, str, bool]]:
    """Return ``(figure, value, goal met)`` rows for the table."""
    rows = []
    sqlite = results["sqlite"]
    throughput = sqlite["throughput"]
    rows.append((
        "1. run / ceiling req/s, 16 clients (goal >= 0.5)",
        f"{throughput['ratio']:.2f} ({throughput['run_rps']:.0f} vs {throughput['ceiling_rps']:.0f} req/s)",
        throughput["ratio"] >= 0.5 and throughput["errors"] == 0,
    ))
    rows.append((
        "1b. run storing no chat messages / ceiling req/s, 16 clients (reported)",
        f"{throughput['unstored_ratio']:.2f} ({throughput['unstored_rps']:.0f} vs {throughput['ceiling_rps']:.0f} req/s)",
        throughput["errors"] == 0,
    ))
    key_count = results["auth"]["key_count"]
    rows.append((
        f"2. verify, {key_count['large_keys']:,} keys / 10 keys (goal <= 1.2)",
        f"{key_count['ratio']:.2f} ({key_count['large_us']:.0f} vs {key_count['small_us']:.0f} us)",
        key_count["ratio"] <= 1.2,
    ))
    for case in ("wrong secret", "unknown id", "malformed"):
        cost = results["auth"]["refusals"][case]
        rows.append((f"3. {case} / valid key, per request (goal <= 1.0)", f"{cost['ratio']:.2f} ({cost['us']:.0f} us)",
                     cost["ratio"] <= 1.0))
    versus = results["auth"]["vs_hasapikey"]
    rows.append((
        "4. ours / HasAPIKey, per request (goal <= 1.0)",
        f"{versus['ratio']:.2f} ({versus['ours_us']:.0f} vs {versus['theirs_us']:.0f} us)",
        versus["ratio"] <= 1.0,
    ))
    for database in ("sqlite", "postgresql"):
        if database not in results:
            continue
        load = results[database]["load"]
        rows.append((
            f"5. {database}: 64 clients {load['seconds']} s, errors / time-outs",
            f"{load['errors']} / {load['timeouts']}, {load['rps']:.0f} req/s ({load['ratio_to_ceiling_at_64']:.2f} of ceiling), "
            f"p99 {load['p99_ms']:.0f} ms",
            load["errors"] == 0 and load["timeouts"] == 0,
        ))
        rows.append((
            f"5. {database}: total_uses added / requests served (goal: served + 0 to 64 dropped by wrk at its stop)",
            f"{load['total_uses_added']} / {load['served']}",
            load["uses_match_served"] and load["served"] > 0,
        ))
        rows.append((
            f"6. {database}: resident memory per worker after load",
            ", ".join(f"{mib:.0f} MiB" for mib in load["rss_mib_per_worker"])
            + f" (at start {', '.join(f'{mib:.0f}' for mib in results[database]['rss_mib_per_worker_at_start'])})",
            True,
        ))
    return rows


def print_table(rows: list[tuple[str, str, bool]], about: dict) -> None:
    print(f"\nMachine: {about['cpu']}, {about['cores']} cores, {about['memory_gib']} GiB, Python {about['python']}, {about['date']}")
    print("\n| figure | result | goal |")
    print("|---|---|---|")
    for figure, value, met in rows:
        print(f"| {figure} | {value} | {'met' if met else 'NOT MET'} |")


SECTIONS = ("classic", "iobound")


def main() -> int:
    only = os.environ.get("BENCH_ONLY", "")
    if only and only not in SECTIONS:
        print(f"BENCH_ONLY must be one of {', '.join(SECTIONS)}, not {only!r}", file=sys.stderr)
        return 2
    if shutil.which("wrk") is None:
        print("wrk is missing: run `make bench` (it installs it) or apt-get install wrk", file=sys.stderr)
        return 2
    # A SIGTERM unwinds like Ctrl-C, so every server, stub and database of the bench is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    raise_open_file_limit()  # inherited by the servers, the stub and the load generators
    postgres_url = None
    if os.environ.get("BENCH_SKIP_POSTGRES") != "1":
        postgres_url = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    results = {"machine": machine(), "quick": QUICK, "sections": [only] if only else list(SECTIONS)}
    with tempfile.TemporaryDirectory(prefix="langflow-bench-") as scratch:
        scratch = Path(scratch)
        if only != "iobound":
            results["auth"] = auth_costs(scratch / "auth")
            log("SQLite server")
            results["sqlite"] = server_phase("sqlite", site_env(scratch / "sqlite"), with_throughput=True)
            if postgres_url is not None:
                url, drop = postgres_database(postgres_url)
                try:
                    log("PostgreSQL server")
                    env = site_env(scratch / "postgresql", DATABASE_URL=url)
                    results["postgresql"] = server_phase("postgresql", env, with_throughput=False)
                finally:
                    drop()
        if only != "classic":
            results["iobound"] = iobound.run(scratch, postgres_url=postgres_url)
    rows = goals(results) if only != "iobound" else []
    if "iobound" in results:
        rows += iobound.goal_rows(results["iobound"])
    results["table"] = [{"figure": f, "result": v, "met": m} for f, v, m in rows]
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    suffix = f"-{only}" if only else ""
    for name in (f"{stamp}{suffix}.json", f"latest{suffix}.json"):
        (RESULTS / name).write_text(json.dumps(results, indent=2))
    print_table(rows, results["machine"])
    print(f"\nJSON: {RESULTS / f'latest{suffix}.json'}")
    return 0 if all(met for _, _, met in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
