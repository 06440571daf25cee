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

One more hop is saved where it would do nothing: at the end of a request whose thread was never
used (an async view that did its sync work on the database threads, ``core.dbthreads``, as the
runs do), the response is closed on the loop. Its thread opened nothing for ``request_finished``
to close, and the hop to it cost a run about as much as the rest of Django's handling of it.
That needs Django's ``handle`` here, with the one line that closes the response changed.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.urls import set_script_prefix

IDLE_REQUEST_THREADS = 32


class RequestThread(ThreadPoolExecutor):
    """A request's single-thread executor, which knows whether it was handed work since taken."""

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="request")
        self.used = False

    def submit(self, fn, /, *args, **kwargs):
        self.used = True
        return super().submit(fn, *args, **kwargs)


# The executor of the request being handled (set for the request's task by the handler).
_request_thread: contextvars.ContextVar[RequestThread] = contextvars.ContextVar("request_thread")


class RequestThreads:
    """Single-thread executors for requests' sync code, reused one request at a time."""

    def __init__(self, idle_limit: int = IDLE_REQUEST_THREADS) -> None:
        self.idle_limit = idle_limit
        self._idle: list[RequestThread] = []
        self._guard = threading.Lock()

    def take(self) -> RequestThread:
        with self._guard:
            if self._idle:
                executor = self._idle.pop()
                executor.used = False
                return executor
        return RequestThread()

    def give_back(self, executor: RequestThread) -> None:
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
        _request_thread.set(executor)
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        except BaseException:
            # Cut short (cancelled, or failed past Django's handling): a sync call may still be
            # running there, and Django may not have closed what it opened. Not reused.
            executor.shutdown(wait=False)
            raise
        self.request_threads.give_back(executor)

    async def handle(self, scope, receive, send):
        """Django's ``ASGIHandler.handle`` (Django 5.2), but for how the response is closed
        (``close_response``); tests/site/test_request_threads.py holds the rest to Django's."""
        # Receive the HTTP request body as a stream object.
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        # Request is complete and can be served.
        set_script_prefix(get_script_prefix(scope))
        await signals.request_started.asend(sender=self.__class__, scope=scope)
        # Get the request and check for basic issues.
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            body_file.close()
            await self.send_response(error_response, send)  # type: ignore[arg-type]  # set when request is None
            await sync_to_async(error_response.close)()  # type: ignore[union-attr]
            return

        async def process_request(request, send):
            response = await self.run_get_response(request)
            try:
                await self.send_response(response, send)
            except asyncio.CancelledError:
                # Client disconnected during send_response (ignore exception).
                pass

            return response

        # Try to catch a disconnect while getting response.
        tasks = [
            # Check the status of these tasks and (optionally) terminate them
            # in this order. The listen_for_disconnect() task goes first
            # because it should not raise unexpected errors that would prevent
            # us from cancelling process_request().
            asyncio.create_task(self.listen_for_disconnect(receive)),
            asyncio.create_task(process_request(request, send)),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        # Now wait on both tasks (they may have both finished by now).
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    # Ignore client disconnects.
                    pass
                except AssertionError:
                    body_file.close()
                    raise
            else:
                # Allow views to handle cancellation.
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    # Task re-raised the CancelledError as expected.
                    pass

        try:
            response = tasks[1].result()
        except asyncio.CancelledError:
            await signals.request_finished.asend(sender=self.__class__)
        else:
            await self.close_response(response)  # the one change (core.asgi)

        body_file.close()

    async def close_response(self, response) -> None:
        """Close an answered request's response on the request's thread, as Django does, or on the
        loop when nothing ran on that thread. The response's own closers must be safe on the loop
        then (``apikeys.request_log``'s is: it hands its write to a database thread)."""
        thread = _request_thread.get(None)
        if thread is not None and not thread.used:
            response.close()
        else:
            await sync_to_async(response.close)()
