"""Django's ASGI handler, with the threads that run each request's sync code reused.

Under ASGI, Django runs a request's sync code (a sync view, a sync middleware hook, and at the
end ``response.close()``, which every request reaches) on a thread of the request's own: asgiref's
``ThreadSensitiveContext`` makes a single-thread executor per request, and on exit a second thread
to shut it down. Two threads started and joined per request cost more on a busy worker than many
views' own work. Here each request borrows a single-thread executor from a pool of this process
and gives it back when it ends, through asgiref's own way to do that
(``ThreadSensitiveContext(executor=...)``, whose executor the caller owns). A request still has
one thread to itself for as long as it runs, as Django expects; the thread is only not new.

Django closes what a request's thread opened when the request ends (``request_finished``:
database connections, caches), on that thread, so a reused thread starts clean as a new one did;
an executor whose request was cut short is not reused.
At most ``IDLE_REQUEST_THREADS`` idle executors are kept; a burst beyond that makes new ones,
which end with their requests.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext
from django.core.handlers.asgi import ASGIHandler

IDLE_REQUEST_THREADS = 32


class RequestThreads:
    """Single-thread executors for requests' sync code, reused one request at a time."""

    def __init__(self, idle_limit: int = IDLE_REQUEST_THREADS) -> None:
        self.idle_limit = idle_limit
        self._idle: list[ThreadPoolExecutor] = []
        self._guard = threading.Lock()

    def take(self) -> ThreadPoolExecutor:
        with self._guard:
            if self._idle:
                return self._idle.pop()
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")

    def give_back(self, executor: ThreadPoolExecutor) -> None:
        with self._guard:
            if len(self._idle) < self.idle_limit:
                self._idle.append(executor)
                return
        executor.shutdown(wait=False)  # idle: its thread ends at once, without this loop waiting

    def idle(self) -> int:
        return len(self._idle)


class ReusedThreadsASGIHandler(ASGIHandler):
    request_threads = RequestThreads()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            # Django's own refusal of what it does not serve (lifespan, websocket).
            return await super().__call__(scope, receive, send)
        executor = self.request_threads.take()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        except BaseException:
            # Cut short (cancelled, or failed past Django's handling): a sync call may still be
            # running there, and Django may not have closed what it opened. Not reused.
            executor.shutdown(wait=False)
            raise
        self.request_threads.give_back(executor)
