"""Run the real server (gunicorn) on loopback with its own database, and load it.

Shared by `make bench` (bench/run.py) and the fault tests (tests/production/): both need a
server started exactly as `make run` starts it, but in a temporary DATA_DIR, on a free port.
Everything here talks to 127.0.0.1 only, and every load loop is bounded in count and time.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
GUNICORN_CONFIG = str(ROOT / "langflow_site" / "gunicorn.conf.py")
LOOPBACK = "127.0.0.1"

# Variables of the calling shell that must not leak into a server that has its own database.
# (DJANGO_ALLOW_ASYNC_UNSAFE is set by the browser tests for their own process; no deployment has it.)
_ISOLATED = (
    "DATABASE_URL",
    "CACHE_URL",
    "SECRET_KEY",
    "API_KEY_PEPPERS",
    "BENCH_ENDPOINTS",
    "WEB_CONCURRENCY",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
)


# Langflow's own exports, kept with the tests.
FIXTURES = ROOT / "tests" / "fixtures" / "langflow"
ECHO_FLOW = FIXTURES / "echo.json"
RUN_BODY = json.dumps({"input_value": "hello", "input_type": "chat", "output_type": "chat"})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def site_env(data_dir: Path | str, **overrides: str) -> dict[str, str]:
    """Return an environment for a site living in ``data_dir`` (SQLite there unless DATABASE_URL is given)."""
    env = {name: value for name, value in os.environ.items() if name not in _ISOLATED}
    # Explicit defaults, so a developer's .env cannot point the site at another database.
    env.update(
        DATA_DIR=str(data_dir),
        DATABASE_URL=f"sqlite:///{Path(data_dir) / 'db.sqlite3'}",
        CACHE_URL="",  # the default: the database cache, shared by the workers as in `make run`
        DJANGO_SETTINGS_MODULE="langflow_site.settings",
        DEBUG="false",
    )
    env.update(overrides)
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    """Run ``manage.py`` with ``args`` in ``env``; return its stdout, raise with its stderr on failure."""
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def prepare_site(env: dict[str, str], key_name: str = "load") -> str:
    """Migrate, create the superuser and one API key for it; return the raw key."""
    manage(env, "migrate", "--noinput")
    manage(env, "bootstrapsuperuser")
    return manage(env, "createapikey", "langflow", "--name", key_name).strip()


def query_total_uses(env: dict[str, str]) -> dict[str, int]:
    """Return ``{key name: total_uses}`` read from the site's database."""
    code = (
        "import json; from apikeys.models import ApiKey; "
        "print(json.dumps(dict(ApiKey.objects.values_list('name', 'total_uses'))))"
    )
    return json.loads(manage(env, "shell", "-v", "0", "-c", code).strip().splitlines()[-1])


def child_pids(pid: int) -> list[int]:
    """The children of process ``pid``, whichever of its threads started them."""
    found: list[int] = []
    for children in sorted(Path(f"/proc/{pid}/task").glob("*/children")):
        try:
            found += [int(part) for part in children.read_text().split()]
        except FileNotFoundError:  # the thread ended meanwhile
            continue
    return found


def _is_job_worker(pid: int) -> bool:
    try:
        return b"runworker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False


def resident_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmRSS for {pid}")


class AppServer:
    """gunicorn serving the site from ``env``, as `make run` does, on a free loopback port."""

    def __init__(self, env: dict[str, str], *, workers: int = 2, log_path: Path | str | None = None):
        self.env = {**env, "WEB_CONCURRENCY": str(workers)}
        self.workers = workers
        self.port = free_port()
        self.log_path = Path(log_path or Path(env["DATA_DIR"]) / "gunicorn.log")
        self.process: subprocess.Popen | None = None

    def url(self, path: str) -> str:
        return f"http://{LOOPBACK}:{self.port}{path}"

    def start(self, ready_timeout: float = 60) -> AppServer:
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [GUNICORN, "langflow_site.asgi:application", "--config", GUNICORN_CONFIG, "--bind", f"{LOOPBACK}:{self.port}"],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log_tail()}")
            if len(self.worker_pids()) == self.workers:
                try:
                    if request("GET", self.url("/health"), timeout=2).status == 200:
                        return self
                except OSError:
                    pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer within {ready_timeout} s:\n{self.log_tail()}")

    def worker_pids(self) -> list[int]:
        """gunicorn's web workers (not the job workers it also starts: ``job_worker_pids``)."""
        pids = child_pids(self.process.pid) if self.process else []
        return [pid for pid in pids if not _is_job_worker(pid)]

    def job_worker_pids(self) -> list[int]:
        """The background job workers (``manage.py runworker``) gunicorn started (JOB_WORKERS)."""
        pids = child_pids(self.process.pid) if self.process else []
        return [pid for pid in pids if _is_job_worker(pid)]

    def wait_for_workers(self, count: int, *, excluding: set[int] = frozenset(), timeout: float = 30) -> list[int]:
        """Wait until ``count`` workers run, none of them in ``excluding``; return their pids."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = self.worker_pids()
            if len(pids) == count and not set(pids) & set(excluding):
                return pids
            time.sleep(0.1)
        raise AssertionError(f"expected {count} workers, saw {self.worker_pids()}")

    def log_tail(self, characters: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-characters:]
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self._log.close()

    def __enter__(self) -> AppServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]
    seconds: float

    def json(self):
        return json.loads(self.body)


def request(method: str, url: str, *, headers: dict | None = None, body: bytes | None = None, timeout: float = 10) -> Reply:
    """One HTTP request on a new connection (gunicorn's sync workers close each one anyway)."""
    assert url.startswith(f"http://{LOOPBACK}:"), "loopback only"
    host_port, _, path = url.removeprefix("http://").partition("/")
    host, _, port = host_port.partition(":")
    started = time.monotonic()
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        connection.request(method, "/" + path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        return Reply(response.status, data, {k.lower(): v for k, v in response.getheaders()}, time.monotonic() - started)
    finally:
        connection.close()


@dataclass
class LoadResult:
    """What clients saw: one entry per request, in the order they finished."""

    replies: list[tuple[float, Reply]] = field(default_factory=list)
    failures: list[tuple[float, str]] = field(default_factory=list)

    def statuses(self, since: float = 0.0, until: float = float("inf")) -> list[int]:
        return [reply.status for at, reply in self.replies if since <= at < until]

    def count(self, status: int) -> int:
        return sum(1 for _, reply in self.replies if reply.status == status)


def run_load(
    method: str,
    url: str,
    *,
    headers: dict | None = None,
    body: bytes | None = None,
    clients: int = 8,
    seconds: float = 10,
    max_requests: int = 20_000,
    timeout: float = 10,
    stop: threading.Event | None = None,
) -> LoadResult:
    """Send requests from ``clients`` threads until ``seconds`` pass, ``max_requests`` are sent or ``stop`` is set."""
    result = LoadResult()
    lock = threading.Lock()
    stop = stop or threading.Event()
    started = time.monotonic()
    deadline = started + seconds
    budget = iter(range(max_requests))

    def client() -> None:
        while not stop.is_set() and time.monotonic() < deadline:
            with lock:
                if next(budget, None) is None:
                    return
            try:
                reply = request(method, url, headers=headers, body=body, timeout=timeout)
            except OSError as exc:  # refused, reset, timed out: the client saw no answer
                with lock:
                    result.failures.append((time.monotonic() - started, f"{type(exc).__name__}: {exc}"))
                continue
            with lock:
                result.replies.append((time.monotonic() - started, reply))

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + timeout + 5)
    return result


def echo_flow() -> dict:
    """Return Langflow's echo export: Chat Input straight to Chat Output."""
    return json.loads(ECHO_FLOW.read_text())


def upload_echo_flow(server: AppServer, api_key: str) -> str:
    """Upload the echo flow as the key's owner, check one run answers "hello"; return the flow id."""
    flow = echo_flow()
    flow["endpoint_name"] = f"bench-echo-{uuid.uuid4().hex[:8]}"
    reply = request("POST", server.url("/api/v1/flows/"), headers={"x-api-key": api_key, "Content-Type": "application/json"},
                    body=json.dumps(flow).encode())
    assert reply.status == 201, (reply.status, reply.body[:500])
    flow_id = reply.json()["id"]
    check = request("POST", server.url(f"/api/v1/run/{flow_id}?stream=false"),
                    headers={"x-api-key": api_key, "Content-Type": "application/json"}, body=RUN_BODY.encode())
    assert check.status == 200, (check.status, check.body[:500])
    assert check.json()["outputs"][0]["outputs"][0]["results"]["message"]["text"] == "hello"
    return flow_id
