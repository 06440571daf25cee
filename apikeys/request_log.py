"""Each key's request log (time, method and path, flow, status, client IP), written off the hot path.

A request with a key already costs its two queries (apikeys.services.authenticate_api_key), and
a run adds only its chat messages: the log must not add a write to that. So ``RequestLogMiddleware``
notes each answered request of a key in this process's memory (no I/O, on the event loop), and
the rows go to the database in one INSERT per batch, after a response went out (its ``close``,
which Django calls once the last byte was sent; for a response closed on the event loop, on a
database thread): when the oldest row waiting is REQUEST_LOG_FLUSH_SECONDS old, or
REQUEST_LOG_BATCH rows wait. The key's page writes what its own
process holds before reading, and the process writes the rest when it exits.

So on a busy server the log trails by a few seconds; on an idle one, a worker's last requests
wait for its next request (or the page, when that worker serves it). A write that fails is
logged and dropped: a log never breaks an answer. Never stored: a query string (a key may travel
in ``?x-api-key=``), a header, a body.
"""

from __future__ import annotations

import asyncio
import atexit
import datetime
import logging
import threading
import time
import uuid
from typing import NamedTuple

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from core import dbthreads
from core.middleware import DualModeMiddleware
from core.net import client_ip

from . import queries
from .logging import redact_text
from .models import ApiKey

logger = logging.getLogger(__name__)

# The URL's name for the flow, as the routes that take one call it.
FLOW_KWARGS = ("flow_ref", "flow_id", "flow_id_or_name", "flow_id_or_endpoint_name")
MAX_PENDING = 10_000  # past this (the database unreachable for long) the oldest rows are dropped


class Entry(NamedTuple):
    """One answered request, as noted in memory (a tuple: the cheapest record Python makes)."""

    api_key_id: uuid.UUID
    created_at: datetime.datetime
    method: str
    path: str
    flow_ref: str
    status: int
    client_ip: str | None

    def row(self) -> dict:
        """The ``ApiKeyRequest`` row, as attnames (``queries.insert_requests``). A key pasted into
        the path by mistake is masked here, at write time, as in every log line (apikeys.logging)."""
        return {"api_key_id": self.api_key_id, "created_at": self.created_at, "method": self.method[:10],
                "path": redact_text(self.path)[:300], "flow_ref": redact_text(self.flow_ref)[:200],
                "status": self.status, "client_ip": self.client_ip}


class Buffer:
    """The rows this process has not written yet. Thread-safe; ``flush`` does the I/O."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entries: list[Entry] = []
        self._oldest = 0.0  # monotonic time the oldest waiting row was noted

    def add(self, entry: Entry) -> None:
        with self._lock:
            if not self._entries:
                self._oldest = time.monotonic()
            self._entries.append(entry)
            if len(self._entries) > MAX_PENDING:
                del self._entries[: len(self._entries) - MAX_PENDING]

    def due(self) -> bool:
        """Whether a batch should be written now (enough rows, or the oldest waited long enough)."""
        with self._lock:
            if not self._entries:
                return False
            return (len(self._entries) >= settings.REQUEST_LOG_BATCH
                    or time.monotonic() - self._oldest >= settings.REQUEST_LOG_FLUSH_SECONDS)

    def take(self) -> list[Entry]:
        with self._lock:
            entries, self._entries = self._entries, []
            return entries

    def clear(self) -> None:
        self.take()

    def __len__(self) -> int:
        return len(self._entries)


pending = Buffer()


def flush() -> int:
    """Write every waiting row of this process in one transaction; return how many were written.

    Rows of a key deleted meanwhile are dropped (one SELECT of the ids that still exist); the
    rest go in one prepared INSERT run per row (``queries.insert_requests``).
    """
    entries = pending.take()
    if not entries:
        return 0
    try:
        with transaction.atomic():
            existing = set(ApiKey.objects.filter(pk__in={entry.api_key_id for entry in entries})
                           .values_list("pk", flat=True))
            rows = [entry.row() for entry in entries if entry.api_key_id in existing]
            queries.insert_requests(rows)
    except DatabaseError:
        logger.warning("Could not write %d API key request log rows; they are dropped.", len(entries),
                       exc_info=True)
        return 0
    return len(rows)


def flush_if_due() -> None:
    """A response's closer: write the waiting rows if a batch is due. Django closes most responses
    on their request's thread; a response closed on the event loop (``core.asgi``) hands the write
    to a database thread instead, and the loop goes on without waiting for it."""
    if _writes or not pending.due():  # a write under way takes every row waiting when it starts
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        flush()
        return
    writing = loop.create_task(dbthreads.run(flush))
    _writes.add(writing)  # the loop keeps only a weak reference to a task
    writing.add_done_callback(_writes.discard)


_writes: set[asyncio.Task] = set()


def _flush_at_exit() -> None:
    try:
        flush()
        connection.close()
    except Exception:  # noqa: BLE001  (the interpreter is going away: never raise from here)
        logger.warning("Could not write the API key request log at exit.", exc_info=True)


atexit.register(_flush_at_exit)


def entry_for(request, response) -> Entry | None:
    """The log row of an answered request, or None when no key authenticated it."""
    api_key = getattr(request, "auth", None)  # DRF sets it on the Django request too
    if not isinstance(api_key, ApiKey):
        return None
    match = getattr(request, "resolver_match", None)
    kwargs = match.kwargs if match is not None else {}
    flow_ref = next((str(kwargs[name]) for name in FLOW_KWARGS if kwargs.get(name)), "")
    # Noted as they are (no work on the request's path): ``Entry.row`` masks and cuts them.
    return Entry(api_key.pk, timezone.now(), request.method, request.path, flow_ref, response.status_code,
                 client_ip(request))


class RequestLogMiddleware(DualModeMiddleware):
    """Note each request a key authenticated (in memory); write due batches once the answer is sent."""

    def after(self, request, response):
        if not settings.REQUEST_LOG_ENABLED:
            return response
        entry = entry_for(request, response)
        if entry is not None:
            pending.add(entry)
            # Django calls a response's closers after its last byte went out (on a thread under ASGI).
            response._resource_closers.append(flush_if_due)
        return response
