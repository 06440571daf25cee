"""core.asgi: each request's sync code runs on a thread of its own for the whole request, as Django
expects, taken from a pool of reused threads rather than started (and joined) per request; a
thread comes back clean, and one whose request was cut short is never reused. A request that never
used its thread (a run: its sync work is on the database threads) is closed on the loop."""

import ast
import asyncio
import inspect
import textwrap
import threading

import pytest
from django.core import signals
from django.core.handlers.asgi import ASGIHandler
from django.db import close_old_connections, connection, reset_queries

from apikeys import request_log
from apikeys.models import ApiKeyRequest
from core import middleware as site_middleware
from core.asgi import RequestThreads, ReusedThreadsASGIHandler
from flows import services
from tests.flows.conftest import load_fixture

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def handler(settings):
    settings.MIDDLEWARE = site_middleware.for_asgi(settings.MIDDLEWARE)
    served = ReusedThreadsASGIHandler()
    served.request_threads = RequestThreads(idle_limit=4)
    return served


async def serve(handler, path: str = "/health", *, method: str = "GET", body: bytes = b"",
                headers: tuple[tuple[bytes, bytes], ...] = ()) -> int:
    """One request through ``handler``; its status."""
    sent = []
    incoming = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        if incoming:
            return incoming.pop()
        await asyncio.Event().wait()  # the client stays until the answer is out

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"testserver"), *headers], "client": ("127.0.0.1", 50000),
             "server": ("testserver", 80)}
    await handler(scope, receive, send)
    return sent[0]["status"]


@pytest.fixture
def finished_on():
    """The thread each request ended on."""
    seen = []

    def note(**kwargs):
        seen.append(threading.get_ident())

    signals.request_finished.connect(note)
    yield seen
    signals.request_finished.disconnect(note)


def test_requests_one_after_another_reuse_one_thread_and_start_no_new_ones(handler, finished_on):
    async def three():
        return [await serve(handler) for _ in range(3)]

    assert asyncio.run(three()) == [200, 200, 200]
    before = threading.active_count()
    assert asyncio.run(three()) == [200, 200, 200]
    assert threading.active_count() == before
    assert len(set(finished_on)) == 1 and finished_on[0] != threading.get_ident()
    assert handler.request_threads.idle() == 1


def test_requests_at_the_same_time_each_have_a_thread_of_their_own(handler, finished_on):
    async def together():
        return await asyncio.gather(*(serve(handler, "/login/") for _ in range(3)))

    assert asyncio.run(together()) == [200, 200, 200]
    assert len(set(finished_on)) == 3
    assert handler.request_threads.idle() == 3


def test_a_reused_thread_starts_with_the_database_connection_closed(handler, django_user_model):
    django_user_model.objects.create_user(username="reader", password="reader-password-1")
    open_at_start = []

    def note(**kwargs):  # on the request's thread, before its view: then a query opens a connection
        open_at_start.append(connection.connection is not None)
        assert django_user_model.objects.filter(username="reader").exists()

    signals.request_started.connect(note)
    try:
        async def pages():
            return [await serve(handler, "/login/") for _ in range(3)]

        assert asyncio.run(pages()) == [200, 200, 200]
    finally:
        signals.request_started.disconnect(note)
    assert open_at_start == [False, False, False]


def test_idle_threads_are_bounded_and_the_rest_end():
    threads = RequestThreads(idle_limit=2)
    taken = [threads.take() for _ in range(4)]
    assert len({id(executor) for executor in taken}) == 4
    for executor in taken:
        executor.submit(lambda: None).result()
        threads.give_back(executor)
    assert threads.idle() == 2
    assert [executor._shutdown for executor in taken] == [False, False, True, True]
    assert threads.take() in taken[:2]


def test_a_request_cut_short_does_not_give_its_thread_back(handler, monkeypatch):
    async def fails(scope, receive, send):
        raise RuntimeError("cut short")

    monkeypatch.setattr(handler, "handle", fails)
    with pytest.raises(RuntimeError):
        asyncio.run(serve(handler))
    assert handler.request_threads.idle() == 0


def test_what_django_does_not_serve_is_refused_as_django_refuses_it(handler):
    async def lifespan():
        await handler({"type": "lifespan"}, None, None)

    with pytest.raises(ValueError, match="lifespan"):
        asyncio.run(lifespan())


def test_a_run_never_uses_its_requests_thread_and_is_closed_on_the_loop(request, handler, finished_on, settings,
                                                                       user, make_key):
    settings.DB_WORK_ON_CALLING_THREAD = False  # the database threads, as the server has them
    settings.REQUEST_LOG_ENABLED = True
    settings.REQUEST_LOG_FLUSH_SECONDS = 0
    [flow] = services.import_flows(user=user, payload=load_fixture("echo.json"))
    api_key, raw = make_key(user)
    # langflow_site/asgi.py drops these two receivers, which would hop to the request's thread.
    signals.request_started.disconnect(reset_queries)
    signals.request_started.disconnect(close_old_connections)
    request.addfinalizer(lambda: signals.request_started.connect(reset_queries))
    request.addfinalizer(lambda: signals.request_started.connect(close_old_connections))

    async def run():
        status = await serve(handler, f"/api/v1/run/{flow.id}", method="POST", body=b'{"input_value": "hi"}',
                             headers=((b"x-api-key", raw.encode()), (b"content-type", b"application/json")))
        await asyncio.gather(*request_log._writes)  # the log's batch, handed to a database thread
        return status

    assert asyncio.run(run()) == 200
    assert finished_on == [threading.get_ident()]  # request_finished sent on the loop's thread
    assert handler.request_threads.idle() == 1
    assert list(ApiKeyRequest.objects.filter(api_key=api_key).values_list("path", "status")) == [
        (f"/api/v1/run/{flow.id}", 200)]


def test_a_thread_knows_whether_its_request_used_it():
    threads = RequestThreads(idle_limit=1)
    taken = threads.take()
    assert taken.used is False
    taken.submit(lambda: None).result()
    assert taken.used is True
    threads.give_back(taken)
    again = threads.take()
    assert again is taken and again.used is False


def _body(function) -> str:
    """``function``'s code without its docstring and comments."""
    definition = ast.parse(textwrap.dedent(inspect.getsource(function))).body[0]
    definition.body = definition.body[1:]
    return ast.unparse(definition)


def test_handle_is_djangos_but_for_how_the_response_is_closed():
    """core.asgi carries a copy of Django's ASGIHandler.handle: a Django upgrade that changes it
    fails here, so the copy is brought up to date rather than left behind."""
    ours = _body(ReusedThreadsASGIHandler.handle)
    assert ours.count("await self.close_response(response)") == 1
    assert ours.replace("await self.close_response(response)", "await sync_to_async(response.close)()") == \
        _body(ASGIHandler.handle)
