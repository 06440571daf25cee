"""Serve the bare project with gunicorn + uvicorn workers on a free loopback port, as the site is served."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.harness.server import GUNICORN, LOOPBACK, PYTHON, ROOT, child_pids, free_port, request

WORKER_CLASS = "uvicorn_worker.UvicornWorker"
# The calling shell's settings must not reach the bare project.
_DROPPED = ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "WEB_CONCURRENCY", "DJANGO_ALLOW_ASYNC_UNSAFE")


class BareServer:
    """``with BareServer(data_dir, workers=2) as bare: bare.url("/echo")``."""

    def __init__(self, data_dir: Path | str, *, workers: int = 2, model_base_url: str = ""):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.workers = workers
        self.port = free_port()
        self.log_path = self.data_dir / "gunicorn.log"
        self.env = {name: value for name, value in os.environ.items() if name not in _DROPPED}
        self.env.update(DJANGO_SETTINGS_MODULE="bench.bare.settings", BARE_DB=str(self.data_dir / "bare.sqlite3"),
                        BARE_MODEL_URL=model_base_url)
        self.process: subprocess.Popen | None = None
        self._log = None

    def url(self, path: str) -> str:
        return f"http://{LOOPBACK}:{self.port}{path}"

    def worker_pids(self) -> list[int]:
        return child_pids(self.process.pid) if self.process else []

    def start(self, ready_timeout: float = 60) -> BareServer:
        result = subprocess.run([PYTHON, "-m", "django", "migrate", "--run-syncdb", "--noinput", "-v", "0"],
                                cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"bare app migrate failed:\n{result.stderr[-3000:]}")
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [GUNICORN, "bench.bare.asgi:application", "--worker-class", WORKER_CLASS, "--workers", str(self.workers),
             "--bind", f"{LOOPBACK}:{self.port}", "--keep-alive", "5", "--no-control-socket"],
            cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + ready_timeout
        body = json.dumps({"input_value": "hello"}).encode()
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the bare app's gunicorn exited with {self.process.returncode}:\n{self.log_tail()}")
                if len(self.worker_pids()) == self.workers:
                    try:
                        reply = request("POST", self.url("/echo"), headers={"Content-Type": "application/json"},
                                        body=body, timeout=2)
                        if reply.status == 200 and reply.json() == {"items": False, "input_value": "hello"}:
                            return self
                    except OSError:
                        pass
                time.sleep(0.2)
            raise RuntimeError(f"the bare app did not answer within {ready_timeout} s:\n{self.log_tail()}")
        except BaseException:
            self.stop()
            raise

    def log_tail(self, characters: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-characters:]
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> BareServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
