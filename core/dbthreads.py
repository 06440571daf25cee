"""Short database work for async views, on a bounded pool of threads.

Django's ORM is synchronous. Under ASGI, Django runs each request's sync code on a thread of
that request's own (asgiref's ThreadSensitiveContext), so a run that did its queries there would
keep a thread, and with persistent connections a database connection, for as long as the model
takes to answer. The async run endpoints instead hand their few milliseconds of queries to this
pool of ``DB_THREADS`` threads and await the model on the event loop with no thread at all:
thousands of runs in flight cost a handful of threads and at most ``DB_THREADS`` connections
per process (one thread on SQLite, by default: see the settings).

A job waits for a free thread on the event loop (a semaphore of ``DB_THREADS``), never in the
executor's queue: when a thousand runs arrive at once, their queries are fed to the threads one
as another finishes, each finish giving the loop a turn, so the other requests of the worker
(a page, whoami) keep being answered in between (``bench/iobound.py`` measures it).

After each job the thread's connections go back: a PostgreSQL connection to psycopg's pool
(``settings.DB_POOL_SIZE`` bounds it too); a SQLite connection stays open with its thread,
since the pool of threads is itself bounded, unless the job left it in error.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections

T = TypeVar("T")

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()
_free_threads: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _threads() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        with _executor_lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(max_workers=settings.DB_THREADS, thread_name_prefix="db")
    return _executor


def release_connections() -> None:
    """Give back what this thread holds, as the end of a request would."""
    for connection in connections.all(initialized_only=True):
        keep = (connection.vendor == "sqlite" and connection.connection is not None
                and not connection.errors_occurred and not connection.in_atomic_block)
        if not keep:
            connection.close()


def _job(function: Callable[..., T], args: tuple, kwargs: dict) -> T:
    try:
        return function(*args, **kwargs)
    finally:
        release_connections()


async def run(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Await ``function(*args, **kwargs)`` run on a database thread (context variables included)."""
    if settings.DB_WORK_ON_CALLING_THREAD:
        return await sync_to_async(function, thread_sensitive=True)(*args, **kwargs)
    loop = asyncio.get_running_loop()
    free = _free_threads.get(loop)
    if free is None:
        free = _free_threads[loop] = asyncio.Semaphore(settings.DB_THREADS)
    async with free:
        # The executor's own hand-off, with the caller's context: asgiref's sync_to_async did the
        # same with several layers more per call, and a run makes two.
        return await loop.run_in_executor(_threads(), contextvars.copy_context().run, _job, function, args, kwargs)
