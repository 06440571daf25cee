"""The I/O-bound section of `make bench` (issue 10): runs that wait on a model.

The real server (tests.harness.server.AppServer: SQLite, then PostgreSQL) runs Langflow's Basic
Prompting export against the model stub (tests/harness/modelstub.py), started here and set as the
server's OPENAI_BASE_URL. The load comes from bench/loadgen.py in a process of its own. Each
figure is a ratio to the ideal:

1. 64 clients, model 1 s, plain and ``?stream=true``: runs/s / 64, goal >= 0.8, no errors;
2. one wave of 1,000 streamed runs, model streaming for 10 s: all complete, wave time / 10 s <= 3;
3. beside load 1, whoami with another user's key and the API Keys page (signed in) answer with
   p99 < 250 ms; beside the wave, p99 < 1 s;
4. the echo run against a bare Django + DRF app (bench/bare/), 16 clients, interleaved rounds;
5. with the wave's streams open, resident memory per worker < 250 MiB, and on PostgreSQL the
   connections to the database stay within the pool (DB_POOL_SIZE per worker, plus 2 each).

The model's behaviour is chosen per run with a tweak of the Language Model node's model name
(e.g. ``stub,delay=1``), so one stub serves every load.

Options (environment): BENCH_QUICK=1 shortens every load; BENCH_IO_CLIENTS, BENCH_IO_SECONDS,
BENCH_IO_WAVE and BENCH_IO_STREAM_SECONDS override the sizes (e.g. 8 clients and a wave of 50
for a smoke run); the goals scale with them.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from urllib.parse import urlencode

from bench.bare.server import WORKER_CLASS, BareServer
from bench.tools import postgres_database, wrk
from tests.harness.modelstub import ModelStub
from tests.harness.server import (
    FIXTURES,
    LOOPBACK,
    PYTHON,
    ROOT,
    RUN_BODY,
    AppServer,
    manage,
    prepare_site,
    request,
    resident_mib,
    site_env,
    upload_echo_flow,
)


def _number(name: str, default, kind=int):
    value = os.environ.get(name)
    return kind(value) if value else default


QUICK = os.environ.get("BENCH_QUICK") == "1"
CLIENTS = _number("BENCH_IO_CLIENTS", 64)
LOAD_SECONDS = _number("BENCH_IO_SECONDS", 5 if QUICK else 15, float)
WAVE = _number("BENCH_IO_WAVE", 250 if QUICK else 1000)
STREAM_SECONDS = _number("BENCH_IO_STREAM_SECONDS", 5 if QUICK else 10, float)
WORKERS = 2
ECHO_CLIENTS = 16
ECHO_ROUNDS = 2 if QUICK else 4
ECHO_SECONDS = 3 if QUICK else 8

MODEL_SECONDS = 1.0
MODEL_PLAIN = "stub,delay=1"
MODEL_STREAM = "stub,delay=0.5,stream_seconds=0.5,chunks=10"       # 1 s in all, tokens spread over the second half
MODEL_WAVE = f"stub,delay=0,stream_seconds={STREAM_SECONDS:g},chunks=20"
RUN_TIMEOUT = 30.0                  # a run slower than this is a time-out (an error)
WAVE_GIVE_UP = 6                    # stop waiting for the wave after this many times the model's stream
SETTLE_LIMIT = 30.0

# Goals (issue 10).
GOAL_RATE = 0.8
GOAL_WAVE = 3.0
GOAL_PROBE_LOAD_MS = 250
GOAL_PROBE_WAVE_MS = 1000
GOAL_RSS_MIB = 250
DEFAULT_POOL = 8
SYNC_THREAD_CONNECTIONS = 2

PROMPTING_FLOW = FIXTURES / "basic_prompting.json"
MODEL_NODE_TYPES = ("LanguageModelComponent", "OpenAIModel")
PROBER = "bench-prober"
EXPECT = "stub: "


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---- the site: flow, second user, signed-in session -------------------------------------------

def model_node_id(flow: dict) -> str:
    for node in flow["data"]["nodes"]:
        if node.get("data", {}).get("type") in MODEL_NODE_TYPES:
            return node["id"]
    raise ValueError("the flow has no language model node")


def run_body(node_id: str, model: str) -> str:
    """The bench's run body, with the model's behaviour chosen by a tweak of its model name."""
    return json.dumps({"input_value": "hello", "input_type": "chat", "output_type": "chat",
                       "tweaks": {node_id: {"model_name": model}}})


def upload_prompting_flow(server: AppServer, api_key: str) -> tuple[str, str]:
    """Upload Basic Prompting through the API, check one run reaches the stub; return (flow id, model node id)."""
    flow = json.loads(PROMPTING_FLOW.read_text())
    headers = {"x-api-key": api_key, "Content-Type": "application/json"}
    reply = request("POST", server.url("/api/v1/flows/"), headers=headers, body=json.dumps(flow).encode())
    if reply.status != 201:
        raise RuntimeError(f"uploading Basic Prompting answered {reply.status}: {reply.body[:500]!r}")
    flow_id, node_id = reply.json()["id"], model_node_id(flow)
    check = request("POST", server.url(f"/api/v1/run/{flow_id}?stream=false"), headers=headers,
                    body=run_body(node_id, "stub,delay=0").encode(), timeout=30)
    if check.status != 200 or EXPECT.encode() not in check.body:
        raise RuntimeError(f"a Basic Prompting run did not reach the stub: {check.status} {check.body[:500]!r}")
    return flow_id, node_id


def create_second_user(env: dict) -> tuple[str, str]:
    """A second user with a password and a key of its own: return (password, raw key)."""
    password = secrets.token_urlsafe(18)
    code = ("from django.contrib.auth import get_user_model; "
            f"get_user_model().objects.create_user({PROBER!r}, password={password!r})")
    manage(env, "shell", "-v", "0", "-c", code)
    return password, manage(env, "createapikey", PROBER, "--name", "probe").strip()


def _cookies(response: http.client.HTTPResponse, jar: dict) -> None:
    for header in response.msg.get_all("Set-Cookie") or []:
        name, _, rest = header.partition("=")
        jar[name.strip()] = rest.split(";", 1)[0]


def sign_in(server: AppServer, username: str, password: str) -> str:
    """Sign in through the login form (CSRF token and cookie); return the Cookie header of the session."""
    jar: dict[str, str] = {}
    connection = http.client.HTTPConnection(LOOPBACK, server.port, timeout=30)
    try:
        connection.request("GET", "/login/")
        response = connection.getresponse()
        page = response.read().decode()
        _cookies(response, jar)
    finally:
        connection.close()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if response.status != 200 or token is None or "csrftoken" not in jar:
        raise RuntimeError(f"the login page answered {response.status} without a CSRF token:\n{server.log_tail()}")
    form = urlencode({"csrfmiddlewaretoken": token.group(1), "username": username, "password": password})
    connection = http.client.HTTPConnection(LOOPBACK, server.port, timeout=30)
    try:
        connection.request("POST", "/login/", body=form, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={jar['csrftoken']}",
            "Referer": server.url("/login/"), "Origin": f"http://{LOOPBACK}:{server.port}",
        })
        response = connection.getresponse()
        response.read()
        _cookies(response, jar)
    finally:
        connection.close()
    if response.status != 302 or "sessionid" not in jar:
        raise RuntimeError(f"signing in answered {response.status}, no session")
    cookie = "; ".join(f"{name}={value}" for name, value in jar.items())
    page = request("GET", server.url("/api-keys/"), headers={"Cookie": cookie}, timeout=30)
    if page.status != 200 or b"probe" not in page.body:
        raise RuntimeError(f"the API Keys page answered {page.status} to the signed-in session")
    return cookie


def probe_targets(server: AppServer, other_key: str, cookie: str) -> list[dict]:
    return [
        {"name": "whoami", "url": server.url("/api/v1/users/whoami"), "headers": {"x-api-key": other_key}},
        {"name": "api_keys_page", "url": server.url("/api-keys/"), "headers": {"Cookie": cookie}},
    ]


# ---- running the load generator beside samplers ----------------------------------------------

def loadgen(spec: dict, *, limit: float, sample=None, every: float = 0.25) -> dict:
    """Run bench/loadgen.py on ``spec`` in its own process, calling ``sample()`` every ``every`` s meanwhile."""
    with tempfile.TemporaryFile() as output, tempfile.TemporaryFile() as errors:
        process = subprocess.Popen([PYTHON, "-m", "bench.loadgen"], cwd=ROOT, stdin=subprocess.PIPE, stdout=output,
                                   stderr=errors, start_new_session=True)
        try:
            process.stdin.write(json.dumps(spec).encode())
            process.stdin.close()
            deadline = time.monotonic() + limit
            while process.poll() is None:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the load generator was still running after {limit:.0f} s")
                if sample is not None:
                    sample()
                time.sleep(every)
        finally:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        if process.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"the load generator failed ({process.returncode}):\n{errors.read().decode()[-3000:]}")
        output.seek(0)
        return json.loads(output.read())


def settle(stub: ModelStub, limit: float = SETTLE_LIMIT) -> bool:
    """Wait until no model call is in flight and none has started for a second; False after ``limit``."""
    deadline = time.monotonic() + limit
    last = None
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        stats = stub.stats()
        marker = (stats["requests"], stats["in_flight"])
        if marker != last:
            last, quiet_since = marker, time.monotonic()
        elif stats["in_flight"] == 0 and time.monotonic() - quiet_since >= 1.0:
            return True
        time.sleep(0.2)
    return False


class Sampler:
    """Resident memory of each worker, the stub's calls in flight and (PostgreSQL) connections, while a load runs."""

    def __init__(self, server: AppServer, stub: ModelStub, postgres: dict | None):
        self.server, self.stub = server, stub
        self.rss: dict[int, float] = {}
        self.max_in_flight = 0
        self.max_connections = 0
        self.samples = 0
        self.postgres = postgres
        self._db = None
        if postgres:
            import psycopg

            self._db = psycopg.connect(postgres["admin_url"], autocommit=True)

    def __call__(self) -> None:
        self.samples += 1
        for pid in self.server.worker_pids():
            with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
                self.rss[pid] = max(self.rss.get(pid, 0.0), resident_mib(pid))
        with contextlib.suppress(OSError, ValueError):
            self.max_in_flight = max(self.max_in_flight, self.stub.stats()["in_flight"])
        if self._db is not None:
            count = self._db.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s",
                                     (self.postgres["database"],)).fetchone()[0]
            self.max_connections = max(self.max_connections, count)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()

    def result(self) -> dict:
        return {
            "max_rss_mib_per_worker": {str(pid): round(mib, 1) for pid, mib in self.rss.items()},
            "stub_max_in_flight_sampled": self.max_in_flight,
            "samples": self.samples,
            **({"max_db_connections": self.max_connections} if self.postgres else {}),
        }


# ---- the loads -------------------------------------------------------------------------------

def closed_load(server: AppServer, stub: ModelStub, run_url: str, body: str, api_key: str, probes: list[dict],
                *, stream: bool) -> dict:
    """Goal 1 (and 3): CLIENTS clients for LOAD_SECONDS, probes beside them."""
    stub.reset()
    spec = {
        "load": {"kind": "closed", "url": run_url, "clients": CLIENTS, "seconds": LOAD_SECONDS, "body": body,
                 "headers": {"x-api-key": api_key, "Content-Type": "application/json"}, "stream": stream,
                 "timeout": RUN_TIMEOUT, "expect": EXPECT},
        "probes": probes,
    }
    result = loadgen(spec, limit=LOAD_SECONDS + RUN_TIMEOUT + 60)
    result["stub"] = stub.stats()
    load = result["load"]
    result["ratio"] = load["rate"] / (CLIENTS / MODEL_SECONDS)
    log(f"    {load['completed']} runs, {load['rate']:.1f}/s ({result['ratio']:.2f} of ideal), "
        f"{load['error_count']} errors{' ' + str(load['errors']) if load['errors'] else ''}, "
        f"p99 {load['latency']['p99_ms']} ms; loadgen CPU {result['loadgen_cpu_seconds']} s; "
        + probe_summary(result["probes"]))
    if not settle(stub):
        log(f"    (the server was still calling the model {SETTLE_LIMIT:g} s later)")
    return result


def warm_up(stub: ModelStub, run_url: str, body: str, api_key: str, probes: list[dict]) -> None:
    """A second of quick runs and probes first: each worker's first requests (imports, template and
    client set-up) are not what the figures are about."""
    spec = {"load": {"kind": "closed", "url": run_url, "clients": min(CLIENTS, 16), "seconds": 1.0, "body": body,
                     "headers": {"x-api-key": api_key, "Content-Type": "application/json"}, "timeout": RUN_TIMEOUT},
            "probes": probes}
    loadgen(spec, limit=RUN_TIMEOUT + 60)
    settle(stub)


def wave_load(server: AppServer, stub: ModelStub, run_url: str, body: str, api_key: str, probes: list[dict],
              postgres: dict | None) -> dict:
    """Goals 2, 3 and 5: WAVE streamed runs at once; memory, model calls and connections sampled meanwhile."""
    stub.reset()
    limit = WAVE_GIVE_UP * STREAM_SECONDS
    spec = {
        "load": {"kind": "wave", "url": run_url, "count": WAVE, "body": body, "stream": True, "limit": limit,
                 "headers": {"x-api-key": api_key, "Content-Type": "application/json"}, "expect": EXPECT},
        "probes": probes,
    }
    sampler = Sampler(server, stub, postgres)
    try:
        result = loadgen(spec, limit=limit + 120, sample=sampler)
    finally:
        sampler.close()
    result["samples"] = sampler.result()
    result["stub"] = stub.stats()
    load = result["load"]
    result["ratio"] = load["wall_seconds"] / STREAM_SECONDS if load["all_completed"] else None
    log(f"    {load['completed']}/{WAVE} complete, wave "
        + (f"{load['wall_seconds']:.1f} s ({result['ratio']:.2f} x {STREAM_SECONDS:g} s)" if load["all_completed"]
           else f"gave up after {limit:g} s")
        + f", {load['error_count']} errors{' ' + str(load['errors']) if load['errors'] else ''}; model calls in flight at most "
          f"{result['stub']['max_in_flight']}; RSS {list(result['samples']['max_rss_mib_per_worker'].values())} MiB"
        + (f"; DB connections at most {sampler.max_connections}" if postgres else "")
        + f"; loadgen CPU {result['loadgen_cpu_seconds']} s; " + probe_summary(result["probes"]))
    return result


def probe_summary(probes: dict) -> str:
    return ", ".join(f"{name} p99 {p['p99_ms']} ms (max {p['max_ms']}, {p['failures']} failed)" for name, p in probes.items())


def echo_vs_bare(server: AppServer, api_key: str, scratch: Path) -> dict:
    """Goal 4: the echo run against a bare Django + DRF app, ECHO_CLIENTS clients, interleaved rounds."""
    echo_url = server.url(f"/api/v1/run/{upload_echo_flow(server, api_key)}?stream=false")
    with BareServer(scratch / "bare", workers=WORKERS) as bare:
        rounds = []
        for number in range(ECHO_ROUNDS):
            pair = {}
            order = [("site", echo_url, api_key), ("bare", bare.url("/echo"), "")]
            for name, url, key in order if number % 2 == 0 else order[::-1]:
                pair[name] = wrk(url, connections=ECHO_CLIENTS, seconds=ECHO_SECONDS, method="POST", body=RUN_BODY,
                                 api_key=key)
            rounds.append(pair)
            log(f"    round {number + 1}: echo run {pair['site']['rps']:.0f}/s, bare {pair['bare']['rps']:.0f}/s")
    non_200 = sum(n for r in rounds for side in r.values() for status, n in side["statuses"].items() if status != "200")
    return {
        "clients": ECHO_CLIENTS,
        "worker_class": WORKER_CLASS,
        "workers": WORKERS,
        "site_rps": statistics.median(r["site"]["rps"] for r in rounds),
        "bare_rps": statistics.median(r["bare"]["rps"] for r in rounds),
        "ratio": statistics.median(r["site"]["rps"] / r["bare"]["rps"] for r in rounds),
        "errors": sum(r[name]["error_count"] for r in rounds for name in r) + non_200,
        "rounds": [{name: {"rps": side["rps"], "p99_ms": side["latency_us"]["p99"] / 1000} for name, side in r.items()}
                   for r in rounds],
    }


# ---- phases ----------------------------------------------------------------------------------

def pool_bound(env: dict) -> dict:
    size = int(env.get("DB_POOL_SIZE") or DEFAULT_POOL)
    return {"db_pool_size": size, "workers": WORKERS, "bound": WORKERS * (size + SYNC_THREAD_CONNECTIONS)}


def phase(name: str, env: dict, scratch: Path, *, postgres: dict | None = None, with_bare: bool = False,
          with_closed: bool = True) -> dict:
    """One database: the stub, the site pointed at it, then the loads. Every process is stopped on the way out."""
    results: dict = {"workers": WORKERS}
    scratch.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        stub = stack.enter_context(ModelStub(log_path=scratch / "modelstub.log"))
        env = {**env, "OPENAI_BASE_URL": stub.base_url, "OPENAI_API_KEY": "sk-bench-dummy-never-a-real-key",
               "STATIC_ROOT": str(scratch / "static")}
        api_key = prepare_site(env)
        manage(env, "collectstatic", "--noinput", "-v", "0")  # the API Keys page needs its manifest, as `make run` does
        password, other_key = create_second_user(env)
        server = stack.enter_context(AppServer(env, workers=WORKERS))
        flow_id, node_id = upload_prompting_flow(server, api_key)
        probes = probe_targets(server, other_key, sign_in(server, PROBER, password))
        time.sleep(2)  # a worker's memory peaks while it starts, then settles
        results["rss_mib_per_worker_at_start"] = [round(resident_mib(pid), 1) for pid in server.worker_pids()]
        if with_bare:
            log(f"{name}: echo run vs bare Django + DRF, {ECHO_CLIENTS} clients, {ECHO_ROUNDS} rounds")
            results["bare"] = echo_vs_bare(server, api_key, scratch)
        run = server.url(f"/api/v1/run/{flow_id}")
        warm_up(stub, f"{run}?stream=false", run_body(node_id, "stub,delay=0"), api_key, probes)
        if with_closed:
            log(f"{name}: {CLIENTS} clients for {LOAD_SECONDS:g} s, model {MODEL_PLAIN!r}, plain")
            results["plain"] = closed_load(server, stub, f"{run}?stream=false", run_body(node_id, MODEL_PLAIN), api_key,
                                           probes, stream=False)
            log(f"{name}: {CLIENTS} clients for {LOAD_SECONDS:g} s, model {MODEL_STREAM!r}, streamed")
            results["stream"] = closed_load(server, stub, f"{run}?stream=true", run_body(node_id, MODEL_STREAM), api_key,
                                            probes, stream=True)
        log(f"{name}: a wave of {WAVE} streamed runs, model {MODEL_WAVE!r}")
        results["wave"] = wave_load(server, stub, f"{run}?stream=true", run_body(node_id, MODEL_WAVE), api_key, probes,
                                    postgres)
        if postgres:
            results["pool"] = pool_bound(server.env)
    return results


def settings() -> dict:
    return {"clients": CLIENTS, "seconds": LOAD_SECONDS, "wave": WAVE, "stream_seconds": STREAM_SECONDS,
            "model_seconds": MODEL_SECONDS, "models": {"plain": MODEL_PLAIN, "stream": MODEL_STREAM, "wave": MODEL_WAVE},
            "run_timeout": RUN_TIMEOUT, "wave_gives_up_after": WAVE_GIVE_UP * STREAM_SECONDS}


def run(scratch: Path, *, postgres_url: str | None) -> dict:
    """The section: SQLite (with the bare comparison), then PostgreSQL unless ``postgres_url`` is None."""
    results = {"settings": settings()}
    log("I/O-bound: SQLite")
    try:
        results["sqlite"] = phase("sqlite", site_env(scratch / "io-sqlite"), scratch / "io-sqlite", with_bare=True)
    except Exception:
        log("I/O-bound SQLite phase failed:\n" + traceback.format_exc())
        results["sqlite"] = {"failed": traceback.format_exc()}
    if postgres_url is not None:
        log("I/O-bound: PostgreSQL")
        try:
            url, drop = postgres_database(postgres_url)
            try:
                database = url.rsplit("/", 1)[1]
                env = site_env(scratch / "io-postgresql", DATABASE_URL=url)
                results["postgresql"] = phase("postgresql", env, scratch / "io-postgresql",
                                              postgres={"admin_url": postgres_url, "database": database},
                                              with_closed=not QUICK)
            finally:
                drop()
        except Exception:
            log("I/O-bound PostgreSQL phase failed:\n" + traceback.format_exc())
            results["postgresql"] = {"failed": traceback.format_exc()}
    return results


def selfcheck(scratch: Path) -> dict:
    """The loads against the bare project's async model view (no site): what the harness reads when
    the server is not the limit, so a low figure for the site is the site's, not the stub's or the
    load generator's."""
    results = {"settings": settings()}
    with contextlib.ExitStack() as stack:
        stub = stack.enter_context(ModelStub(log_path=scratch / "modelstub.log"))
        bare = stack.enter_context(BareServer(scratch / "bare-selfcheck", workers=WORKERS, model_base_url=stub.base_url))
        probes = [{"name": "bare_echo", "url": bare.url("/echo")}]
        phase_results = results["selfcheck"] = {"rss_mib_per_worker_at_start": [round(resident_mib(pid), 1)
                                                                                for pid in bare.worker_pids()]}
        run_url = bare.url("/run")
        warm_up(stub, f"{run_url}?stream=false", run_body("model", "stub,delay=0"), "", probes)
        log(f"selfcheck: {CLIENTS} clients for {LOAD_SECONDS:g} s against the bare async view, plain")
        phase_results["plain"] = closed_load(bare, stub, f"{run_url}?stream=false", run_body("model", MODEL_PLAIN), "",
                                             probes, stream=False)
        log(f"selfcheck: {CLIENTS} clients for {LOAD_SECONDS:g} s, streamed")
        phase_results["stream"] = closed_load(bare, stub, f"{run_url}?stream=true", run_body("model", MODEL_STREAM), "",
                                              probes, stream=True)
        log(f"selfcheck: a wave of {WAVE} streamed runs")
        phase_results["wave"] = wave_load(bare, stub, f"{run_url}?stream=true", run_body("model", MODEL_WAVE), "", probes,
                                          None)
    return results


def main(argv: list[str]) -> int:
    """``python -m bench.iobound --selfcheck``: the loads against the bare project alone."""
    from tests.harness.modelstub import raise_open_file_limit

    if argv != ["--selfcheck"]:
        print(__doc__, file=sys.stderr)
        print("usage: python -m bench.iobound --selfcheck   (the section itself runs in bench/run.py)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    raise_open_file_limit()
    with tempfile.TemporaryDirectory(prefix="langflow-bench-selfcheck-") as scratch:
        results = selfcheck(Path(scratch))
    print("\n| figure | result | goal |\n|---|---|---|")
    rows = goal_rows(results)
    for figure, value, met in rows:
        print(f"| {figure} | {value} | {'met' if met else 'NOT MET'} |")
    return 0 if all(met for _, _, met in rows) else 1


# ---- the goals table -------------------------------------------------------------------------

def _ms(value) -> str:
    return "-" if value is None else f"{value:.0f}"


def _probe_row(loads: list[dict], goal_ms: float) -> tuple[str, bool]:
    names = list(loads[0]["probes"])
    p99 = {n: max(load["probes"][n]["p99_ms"] or 0 for load in loads) for n in names}
    peak = {n: max(load["probes"][n]["max_ms"] or 0 for load in loads) for n in names}
    failures = sum(load["probes"][n]["failures"] for load in loads for n in names)
    counts = sum(load["probes"][n]["count"] for load in loads for n in names)
    value = (f"{' / '.join(_ms(p99[n]) for n in names)} ms (max {' / '.join(_ms(peak[n]) for n in names)}), "
             f"{failures} failed of {counts}")
    return value, failures == 0 and all(v < goal_ms for v in p99.values())


def goal_rows(results: dict) -> list[tuple[str, str, bool]]:
    """``(figure, value, goal met)`` rows of the I/O-bound section."""
    rows = []
    s = results["settings"]
    clients, wave, stream_s = s["clients"], s["wave"], s["stream_seconds"]
    for database in ("sqlite", "postgresql", "selfcheck"):
        if database not in results:
            continue
        phase_results = results[database]
        if "failed" in phase_results:
            last = phase_results["failed"].strip().splitlines()[-1]
            rows.append((f"I/O {database}: the section failed", last[:200], False))
            continue
        if "bare" in phase_results:
            bare = phase_results["bare"]
            rows.append((
                f"I/O 4. echo run / bare Django + DRF ({bare['workers']} uvicorn workers), req/s, {bare['clients']} clients",
                f"{bare['ratio']:.2f} ({bare['site_rps']:.0f} vs {bare['bare_rps']:.0f} req/s, {bare['errors']} errors)",
                bare["errors"] == 0,
            ))
        loads = [phase_results[kind] for kind in ("plain", "stream") if kind in phase_results]
        for kind in ("plain", "stream"):
            if kind not in phase_results:
                continue
            result = phase_results[kind]
            load = result["load"]
            rows.append((
                f"I/O 1. {database}: {clients} clients, model 1 s, {'?stream=true' if kind == 'stream' else 'plain'}: "
                f"runs/s / {clients} (goal >= {GOAL_RATE}, 0 errors)",
                f"{result['ratio']:.2f} ({load['rate']:.1f} runs/s, {load['error_count']} errors, "
                f"p99 {_ms(load['latency']['p99_ms'])} ms)",
                result["ratio"] >= GOAL_RATE and load["error_count"] == 0,
            ))
        if loads:
            value, met = _probe_row(loads, GOAL_PROBE_LOAD_MS)
            rows.append((f"I/O 3. {database}: beside {clients} clients, whoami (another key) / API Keys page p99 "
                         f"(goal < {GOAL_PROBE_LOAD_MS} ms)", value, met))
        result = phase_results["wave"]
        load = result["load"]
        rows.append((
            f"I/O 2. {database}: wave of {wave:,} streamed runs, model {stream_s:g} s: complete, wave time / {stream_s:g} s "
            f"(goal all, <= {GOAL_WAVE:g})",
            f"{load['completed']}/{wave}, " + (f"{result['ratio']:.2f} ({load['wall_seconds']:.1f} s)"
                                               if load["all_completed"] else f"gave up after {load['limit']:g} s")
            + f", {load['error_count']} errors",
            bool(load["all_completed"]) and result["ratio"] <= GOAL_WAVE,
        ))
        value, met = _probe_row([result], GOAL_PROBE_WAVE_MS)
        rows.append((f"I/O 3. {database}: beside the wave, whoami / API Keys page p99 (goal < {GOAL_PROBE_WAVE_MS} ms)",
                     value, met))
        rss = list(result["samples"]["max_rss_mib_per_worker"].values())
        rows.append((
            f"I/O 5. {database}: resident memory per worker, wave open (goal < {GOAL_RSS_MIB} MiB)",
            ", ".join(f"{mib:.0f}" for mib in rss)
            + f" MiB (at start {', '.join(f'{m:.0f}' for m in phase_results['rss_mib_per_worker_at_start'])}; "
            f"model calls in flight at most {result['stub']['max_in_flight']})",
            bool(rss) and max(rss) < GOAL_RSS_MIB,
        ))
        if "pool" in phase_results:
            pool = phase_results["pool"]
            seen = result["samples"]["max_db_connections"]
            rows.append((
                f"I/O 5. {database}: connections to the database during the wave, max / pool bound (goal <= bound)",
                f"{seen} / {pool['bound']} ({pool['workers']} workers x (DB_POOL_SIZE {pool['db_pool_size']} + "
                f"{SYNC_THREAD_CONNECTIONS}))",
                seen <= pool["bound"],
            ))
    return rows


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
