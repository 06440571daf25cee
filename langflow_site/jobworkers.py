"""The background job workers `make run` starts beside gunicorn, and stops with it.

gunicorn's master calls ``start`` once it is ready (``when_ready``) and ``stop`` when it exits
(``on_exit``). ``start`` launches ``JOB_WORKERS`` processes of ``manage.py runworker`` and a
thread of the master that restarts any of them that exits (after a second, then doubling up
to a minute while it keeps failing). ``stop`` asks each to finish its job (SIGTERM: the job in
hand runs to its end), waits up to ``GRACEFUL_TIMEOUT`` seconds, then kills what is left; a run
killed that way is taken over by another worker once its lease runs out (``webhooks.jobs``).

Workers on other machines run the same command against the same (PostgreSQL) database; set
``JOB_WORKERS=0`` where gunicorn should start none.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

logger = logging.getLogger("gunicorn.error")

ROOT = Path(__file__).resolve().parent.parent
MAX_RESTART_DELAY = 60.0


class JobWorkers:
    def __init__(self, count: int, *, graceful_timeout: float):
        self.count = count
        self.graceful_timeout = graceful_timeout
        self.processes: list[subprocess.Popen | None] = [None] * count
        self.delays = [1.0] * count
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def _spawn(self, slot: int) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "runworker", "--no-reload", "--worker-id",
             f"{os.uname().nodename[:40]}-{os.getpid()}-{slot}"],
            cwd=ROOT,
        )
        logger.info("Started job worker %s (pid %s)", slot, process.pid)
        return process

    def start(self) -> None:
        with self.lock:
            for slot in range(self.count):
                self.processes[slot] = self._spawn(slot)
        self.thread = threading.Thread(target=self._supervise, name="job-workers", daemon=True)
        self.thread.start()

    def _supervise(self) -> None:
        started = [time.monotonic()] * self.count
        while not self.stopping.wait(0.5):
            for slot in range(self.count):
                with self.lock:
                    process = self.processes[slot]
                    if self.stopping.is_set() or process is None or process.poll() is None:
                        continue
                    # gunicorn's master reaps every child it has, so the exit status may be lost.
                    logger.warning("Job worker %s (pid %s) exited; restarting it in %.0f s",
                                   slot, process.pid, self.delays[slot])
                    self.processes[slot] = None
                if self.stopping.wait(self.delays[slot]):
                    return
                ran_long = time.monotonic() - started[slot] > MAX_RESTART_DELAY
                self.delays[slot] = 1.0 if ran_long else min(self.delays[slot] * 2, MAX_RESTART_DELAY)
                with self.lock:
                    if not self.stopping.is_set():
                        self.processes[slot] = self._spawn(slot)
                        started[slot] = time.monotonic()

    def stop(self) -> None:
        self.stopping.set()
        with self.lock:
            running = [process for process in self.processes if process is not None and process.poll() is None]
            for process in running:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.graceful_timeout
        for process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("Job worker pid %s did not stop in time; killing it", process.pid)
                process.kill()
                process.wait(timeout=10)
        if running:
            logger.info("Stopped %s job worker(s)", len(running))


_workers: JobWorkers | None = None


def start(count: int, *, graceful_timeout: float) -> None:
    global _workers
    if count > 0 and _workers is None:
        _workers = JobWorkers(count, graceful_timeout=graceful_timeout)
        _workers.start()


def stop() -> None:
    global _workers
    if _workers is not None:
        _workers.stop()
        _workers = None
