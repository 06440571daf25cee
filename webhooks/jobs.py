"""The worker side of webhook runs: at-least-once jobs made exactly-once in their effects.

django-tasks-db's worker claims a job row under a lock (``SELECT ... FOR UPDATE SKIP LOCKED``
on PostgreSQL, an exclusive transaction on SQLite) and runs it once; it neither retries a
failed job nor notices a worker that died in the middle of one (the row stays RUNNING for
ever). This module adds both, on the ``WebhookRun`` row that is also what the owner sees:

- **Fencing.** Attempt *n* of a run claims its row with one conditional UPDATE (``attempts``
  must be *n - 1*, the status received or retrying) and finishes it with another (``attempts``
  still *n*, status running): a duplicated, late or superseded attempt changes nothing.
- **Exactly-once effects.** The run's chat messages are written in the same transaction as
  the UPDATE that marks it done, and only if that UPDATE matched: a run is recorded once,
  whatever crashed or was retried before.
- **Leases.** A claimed run holds a lease of WEBHOOK_LEASE_SECONDS, extended by a heartbeat
  thread of the worker process every quarter of it. A run whose lease ran out (its worker
  was killed, its machine lost) is taken back by the sweep any worker makes every half lease:
  its next attempt is queued (or the run fails, after WEBHOOK_MAX_ATTEMPTS).
- **Retries with backoff.** An attempt that fails for a reason that may pass (the model
  server, the database, a crash) queues the next one WEBHOOK_RETRY_DELAY x 2^(n-1) seconds
  later (at most an hour); a flow that cannot run as called (a 4xx FlowError) fails at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import os
import socket
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from flows import engine
from flows import services as flow_services
from flows.memory import DatabaseChatMemory, store_messages
from flows.models import Flow

from .models import WebhookRun

logger = logging.getLogger("webhooks.jobs")
T = TypeVar("T")

MAX_RETRY_DELAY = 3600.0
SWEEP_BATCH = 100
LOST = "The worker running this attempt stopped before it finished."

Status = WebhookRun.Status


class WorkerLost(Exception):
    """Recorded on the django-tasks job of an attempt whose worker died."""


def retry_delay(attempt: int) -> float:
    """Seconds between failed attempt ``attempt`` and the next: doubling from WEBHOOK_RETRY_DELAY."""
    return min(settings.WEBHOOK_RETRY_DELAY * 2 ** (attempt - 1), MAX_RETRY_DELAY)


def _lease_end(now: datetime.datetime) -> datetime.datetime:
    return now + datetime.timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)


# --- This process: its name, the runs it holds, its heartbeat and sweep --------------------------

_identity = ""
_held: set[str] = set()
_held_lock = threading.Lock()
_housekeeper: threading.Thread | None = None
_loop: asyncio.AbstractEventLoop | None = None
_start_lock = threading.Lock()


def worker_name() -> str:
    """This process, as recorded on the runs it holds: host, pid and a random tag."""
    global _identity
    if not _identity or f":{os.getpid()}:" not in _identity:  # a forked child gets its own name
        _identity = f"{socket.gethostname()[:64]}:{os.getpid()}:{os.urandom(4).hex()}"
    return _identity


def heartbeat() -> int:
    """Extend the leases of the runs this process is running now; return how many."""
    with _held_lock:
        held = list(_held)
    if not held:
        return 0
    return WebhookRun.objects.filter(pk__in=held, status=Status.RUNNING, worker=worker_name()).update(
        lease_until=_lease_end(timezone.now()))


def _housekeeping() -> None:
    interval = settings.WEBHOOK_LEASE_SECONDS / 4
    beats = 0
    while True:
        try:
            heartbeat()
            if beats % 2 == 0:
                recover_lost_runs()
        except Exception:  # the database may be away for a while: keep beating
            logger.exception("Webhook job housekeeping failed; trying again in %.1f s", interval)
        finally:
            close_old_connections()
        beats += 1
        threading.Event().wait(interval)


def start_housekeeping() -> None:
    """Start this process's heartbeat and sweep thread (once; a daemon: it ends with the process)."""
    global _housekeeper
    with _start_lock:
        if _housekeeper is None or not _housekeeper.is_alive():
            _housekeeper = threading.Thread(target=_housekeeping, name="webhook-housekeeping", daemon=True)
            _housekeeper.start()


def _run_on_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on this process's one long-lived event loop (connections to model
    servers are kept between runs, as in a web worker) and wait for its result."""
    global _loop
    with _start_lock:
        if _loop is None or _loop.is_closed():
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="webhook-loop", daemon=True).start()
    return asyncio.run_coroutine_threadsafe(coroutine, _loop).result()


# --- One attempt ----------------------------------------------------------------------------------

class _HeldChatMemory(DatabaseChatMemory):
    """The run's chat memory, whose messages are written with the run's "done", not before."""

    async def flush(self) -> None:
        pass


def claim(run_id: str, attempt: int) -> WebhookRun | None:
    """Take run ``run_id`` for attempt ``attempt``; None when that attempt is not the run's next
    (a duplicate or stale job, or the run is finished or gone)."""
    now = timezone.now()
    claimed = WebhookRun.objects.filter(
        pk=run_id, attempts=attempt - 1, status__in=(Status.RECEIVED, Status.RETRYING),
    ).update(status=Status.RUNNING, attempts=attempt, worker=worker_name(), lease_until=_lease_end(now),
             next_attempt_at=None)
    if not claimed:
        return None
    WebhookRun.objects.filter(pk=run_id, started_at=None).update(started_at=now)
    return WebhookRun.objects.select_related("flow").get(pk=run_id)


def _mine(run: WebhookRun, attempt: int):
    return WebhookRun.objects.filter(pk=run.pk, attempts=attempt, status=Status.RUNNING)


def finish(run: WebhookRun, attempt: int, messages: list) -> bool:
    """Mark the run done and write its chat messages, together and only if this attempt still
    holds it. Returns whether it did."""
    with transaction.atomic():
        done = _mine(run, attempt).update(status=Status.DONE, finished_at=timezone.now(), lease_until=None,
                                          error="", worker="")
        if done and messages:
            store_messages(str(run.flow_id), messages)
    return bool(done)


def schedule_next(run_id, attempt: int, error: str, *, retriable: bool, current=None) -> str | None:
    """Attempt ``attempt`` failed with ``error``: queue the next attempt after its backoff, or mark
    the run failed (not retriable, or the last attempt). ``current`` narrows which rows may change
    (default: this attempt still running). Returns the new status, or None when the run had moved on."""
    from .tasks import run_webhook

    now = timezone.now()
    rows = current if current is not None else WebhookRun.objects.filter(
        pk=run_id, attempts=attempt, status=Status.RUNNING)
    error = error[:4000]
    with transaction.atomic():
        if retriable and attempt < settings.WEBHOOK_MAX_ATTEMPTS:
            when = now + datetime.timedelta(seconds=retry_delay(attempt))
            job = run_webhook.using(run_after=when).enqueue(str(run_id), attempt + 1)
            changed = rows.update(status=Status.RETRYING, error=error, next_attempt_at=when, lease_until=None,
                                  worker="", task_id=str(job.id))
            if not changed:
                transaction.set_rollback(True)  # the queued job goes with it
                return None
            return Status.RETRYING
        changed = rows.update(status=Status.FAILED, error=error, finished_at=now, lease_until=None, worker="")
        return Status.FAILED if changed else None


def _attempt_error(error: BaseException) -> tuple[str, bool]:
    """What the owner reads, and whether another attempt may succeed."""
    if isinstance(error, engine.FlowError):
        return str(error), error.status_code >= 500
    return f"{type(error).__name__}: {error}"[:1000] or "Internal error", True


def execute(run_id: str, attempt: int) -> str:
    """Run attempt ``attempt`` of webhook run ``run_id`` (the django-tasks job's body).

    Returns what happened; raises the attempt's error after recording it, so that the job's own
    row (django_tasks_db) reads failed too."""
    start_housekeeping()
    run = claim(run_id, attempt)
    if run is None:
        logger.info("Webhook run %s: attempt %s is not its next one; nothing to do", run_id, attempt)
        return "skipped"
    with _held_lock:
        _held.add(str(run.pk))
    try:
        messages = _run_flow(run)
    except Exception as error:
        message, retriable = _attempt_error(error)
        outcome = schedule_next(run.pk, attempt, message, retriable=retriable)
        logger.warning("Webhook run %s, attempt %s failed (%s): %s", run.pk, attempt, outcome, message)
        raise
    finally:
        with _held_lock:
            _held.discard(str(run.pk))
    if not finish(run, attempt, messages):
        logger.warning("Webhook run %s: attempt %s lost its lease before it finished; not recorded", run.pk, attempt)
        return "superseded"
    return "done"


def _run_flow(run: WebhookRun) -> list:
    """Run the flow with the call's body in its Webhook nodes; return the chat messages it stored."""
    flow = Flow.objects.get(pk=run.flow_id)
    from .services import webhook_node_ids

    tweaks = {node_id: {"data": run.body} for node_id in webhook_node_ids(flow)}
    # Every node runs (Langflow's webhook runs the whole flow), each webhook run its own session.
    plan = flow_services.plan_run(flow=flow, input_value="", output_type="debug", tweaks=tweaks,
                                  session_id=str(run.pk))
    memory = _HeldChatMemory(flow_id=str(flow.pk), session_id=plan.context.session_id)
    plan.context = dataclasses.replace(plan.context, memory=memory)
    _run_on_loop(flow_services.run_planned(plan))
    return memory.pending


# --- Runs whose worker died -----------------------------------------------------------------------

def recover_lost_runs() -> int:
    """Take back the running runs whose lease ran out: queue their next attempt (or fail them
    after the last), and mark the abandoned django-tasks job failed. Returns how many."""
    from django_tasks_db.models import DBTaskResult

    now = timezone.now()
    lost = list(WebhookRun.objects.filter(status=Status.RUNNING, lease_until__lt=now)
                .values_list("pk", "attempts", "task_id")[:SWEEP_BATCH])
    recovered = 0
    for run_id, attempt, task_id in lost:
        current = WebhookRun.objects.filter(pk=run_id, attempts=attempt, status=Status.RUNNING, lease_until__lt=now)
        outcome = schedule_next(run_id, attempt, LOST, retriable=True, current=current)
        if outcome is None:
            continue  # its worker came back, or another sweep got there first
        recovered += 1
        if task_id:
            DBTaskResult.objects.filter(pk=task_id, status="RUNNING").update(
                status="FAILED", finished_at=now, exception_class_path=f"{__name__}.WorkerLost", traceback=LOST)
        logger.warning("Webhook run %s: attempt %s lost its worker; %s", run_id, attempt, outcome)
    return recovered
