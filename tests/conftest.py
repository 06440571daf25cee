from contextlib import contextmanager
from functools import partial

import pytest
from django.core.cache import cache, caches
from django.core.cache.backends.db import BaseDatabaseCache
from django.db import connection as default_connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from apikeys.services import create_api_key


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Run the browser tests last: Playwright's sync API leaves an event loop running in the main
    thread for the rest of the session, where no test could run a coroutine (the engine's)."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    """Argon2 is right in production and needlessly slow in tests."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def static_files_without_collectstatic(settings):
    """Serve static files from the source folders, so tests need no collectstatic run."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True


@pytest.fixture(autouse=True)
def database_work_inside_the_test_transaction(settings):
    """The async run endpoints do their queries on a pool of threads, which would not see the
    test's uncommitted rows: in tests they run on the calling thread. The servers started by
    tests/production (and `make bench`) use the pool."""
    settings.DB_WORK_ON_CALLING_THREAD = True


@pytest.fixture(autouse=True)
def no_request_log_unless_asked(settings):
    """Keys' request logs are batched per process (apikeys.request_log): a batch one test left must
    never be written, or counted among the queries, in another. The log's own tests turn it on."""
    from apikeys import request_log

    request_log.pending.clear()
    settings.REQUEST_LOG_ENABLED = False
    yield
    request_log.pending.clear()


@pytest.fixture(autouse=True)
def a_model_session_per_call(settings):
    """The test client runs each request's async code on an event loop of its own: a model
    session kept for the loop would outlive it. The servers of tests/production keep theirs."""
    settings.MODEL_CONNECTION_REUSE = False


_DATABASE_FIXTURES = ("transactional_db", "live_server", "db", "django_db_reset_sequences")


def _database_cache_table() -> str | None:
    backend = caches["default"]
    return backend._table if isinstance(backend, BaseDatabaseCache) else None


def _uses_the_database(request) -> bool:
    """Whether the test may touch the database; if so, make sure its database is set up already."""
    if request.node.get_closest_marker("django_db"):
        return True  # pytest-django's own autouse fixture has set it up
    for name in _DATABASE_FIXTURES:
        if name in request.fixturenames:
            request.getfixturevalue(name)
            return True
    return False


@pytest.fixture(autouse=True)
def empty_cache(request):
    """Throttle counters live in the cache: each test starts from zero.

    The default cache is a table of the test database (core.cache), which only tests that
    use the database can reach; Redis (CI's second pass) is cleared around every test.
    """
    if _database_cache_table() is not None and not _uses_the_database(request):
        yield
        return
    cache.clear()
    yield
    cache.clear()


_SAVEPOINT_STATEMENTS = ("SAVEPOINT ", "RELEASE SAVEPOINT ", "ROLLBACK TO SAVEPOINT ")


class AppQueries(CaptureQueriesContext):
    """The connection's statements, minus the default cache's and the savepoints.

    The default cache is a table of the same database (Redis in CI's second pass): a query count
    then means the same on every backend. The throttle tests count the cache's reads themselves.
    Savepoints are the test's own transaction showing through: the code's ``atomic`` blocks are a
    BEGIN and a COMMIT when served, which no count sees, and a savepoint pair inside a test.
    """

    @property
    def captured_queries(self):
        table = _database_cache_table()
        quoted = self.connection.ops.quote_name(table) if table is not None else None
        return [query for query in super().captured_queries
                if not query["sql"].startswith(_SAVEPOINT_STATEMENTS)
                and (quoted is None or quoted not in query["sql"])]


@contextmanager
def _assert_app_queries(num, exact=True, connection=None, info=None):
    with AppQueries(connection or default_connection) as context:
        yield context
    performed = len(context)
    if performed != num if exact else performed > num:
        statements = "\n\n".join(query["sql"] for query in context.captured_queries)
        pytest.fail(f"Expected {'' if exact else 'at most '}{num} queries, {performed} were done"
                    f"{f' ({info})' if info else ''}:\n\n{statements}")


@pytest.fixture
def django_assert_num_queries():
    """pytest-django's fixture, counting ``AppQueries``."""
    return _assert_app_queries


@pytest.fixture
def django_assert_max_num_queries():
    return partial(_assert_app_queries, exact=False)


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user(username="alice", password="alice-password-1")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user(username="bob", password="bob-password-1")


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def make_key():
    """Create a key; return ``(api_key, raw_key)``."""

    def _make(user, **kwargs):
        return create_api_key(user=user, **kwargs)

    return _make
