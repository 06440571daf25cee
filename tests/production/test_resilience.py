"""A database outage answers a JSON 503 on the API (never a 500), and the app recovers by itself."""

import contextlib
import copy

import pytest
from django.db import OperationalError, connection
from django.test import RequestFactory

from core.resilience import READ_ONLY_MESSAGE, UNAVAILABLE_MESSAGE, DatabaseOutageMiddleware
from tests.harness.server import free_port

pytestmark = pytest.mark.django_db


@contextlib.contextmanager
def database_unreachable():
    """Point the default connection at a database that cannot be opened, then restore it."""
    saved = copy.deepcopy(connection.settings_dict)
    connection.close()
    pooled = bool(connection.settings_dict.get("OPTIONS", {}).get("pool"))
    if connection.vendor == "sqlite":
        connection.settings_dict["NAME"] = "/nonexistent-directory/langflow.sqlite3"
    else:
        connection.settings_dict.update(HOST="127.0.0.1", PORT=str(free_port()))  # nothing listens there
        if pooled:  # a new pool for the new address, giving up on it within a second
            connection.close_pool()
            connection.settings_dict["OPTIONS"]["pool"]["timeout"] = 1
    try:
        yield
    finally:
        connection.close()
        if pooled:
            connection.close_pool()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


@pytest.mark.django_db(transaction=True)
def test_api_answers_503_json_while_the_database_is_down_and_recovers_after(api_client, user, make_key):
    _, raw = make_key(user)
    with database_unreachable():
        response = api_client.get("/api/v1/users/whoami", HTTP_X_API_KEY=raw)
    assert response.status_code == 503
    assert response.json() == {"detail": UNAVAILABLE_MESSAGE}
    assert response["Retry-After"] == "5"
    assert api_client.get("/api/v1/users/whoami", HTTP_X_API_KEY=raw).status_code == 200


def test_a_read_only_database_is_named_as_such(api_client, monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("attempt to write a readonly database")

    monkeypatch.setattr("apikeys.authentication.authenticate_api_key", refuse)
    response = api_client.get("/api/v1/users/whoami", HTTP_X_API_KEY="lfsk_anything")
    assert response.status_code == 503
    assert response.json() == {"detail": READ_ONLY_MESSAGE}


def test_other_api_errors_keep_their_own_answers(api_client):
    response = api_client.get("/api/v1/users/whoami", HTTP_X_API_KEY="not-a-key")
    assert response.status_code == 403
    assert response.json() == {"detail": "Invalid or missing API key"}


def test_the_driver_message_never_reaches_the_client(api_client, monkeypatch):
    def fail(*args, **kwargs):
        raise OperationalError('connection to server at "10.1.2.3", port 5432 failed: password authentication failed')

    monkeypatch.setattr("apikeys.authentication.authenticate_api_key", fail)
    body = api_client.get("/api/v1/users/whoami", HTTP_X_API_KEY="lfsk_x").content.decode()
    assert "10.1.2.3" not in body and "password" not in body


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/api/v1/anything", "application/json"), ("/flows/", "text/html; charset=utf-8")],
)
def test_plain_django_views_answer_503_too_json_on_the_api_html_elsewhere(path, content_type):
    middleware = DatabaseOutageMiddleware(lambda request: None)
    response = middleware.process_exception(RequestFactory().get(path), OperationalError("server closed the connection"))
    assert response.status_code == 503
    assert response["Content-Type"] == content_type
    assert UNAVAILABLE_MESSAGE in response.content.decode()
    if content_type.startswith("text/html"):
        assert '<p class="error-code">503</p>' in response.content.decode()


def test_middleware_leaves_other_exceptions_to_django():
    middleware = DatabaseOutageMiddleware(lambda request: None)
    assert middleware.process_exception(RequestFactory().get("/api/v1/x"), ValueError("bug")) is None


class _DriverError(Exception):
    """A driver exception with PostgreSQL's SQLSTATE, as psycopg's carry it."""

    def __init__(self, sqlstate):
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def _wrapped(sqlstate):
    error = OperationalError(f"driver said {sqlstate}")
    error.__cause__ = _DriverError(sqlstate)
    return error


@pytest.mark.parametrize("sqlstate", ["08006", "57P01", "53100", "53300", "40P01", "25006", "57014"])
def test_postgresql_availability_errors_are_outages(sqlstate):
    from core.resilience import is_database_outage

    assert is_database_outage(_wrapped(sqlstate))


@pytest.mark.parametrize("sqlstate", ["42601", "42P01", "22P02", "XX000"])
def test_other_postgresql_errors_are_not_outages(sqlstate):
    from core.resilience import is_database_outage

    assert not is_database_outage(_wrapped(sqlstate))


@pytest.mark.parametrize("text, outage", [
    ("database is locked", True),
    ("unable to open database file", True),
    ("attempt to write a readonly database", True),
    ("database or disk is full", True),
    ('near "SELEC": syntax error', False),
    ("no such table: apikeys_apikey", False),
    ("no such column: apikeys_apikey.nope", False),
])
def test_sqlite_statement_mistakes_are_not_outages(text, outage):
    from core.resilience import is_database_outage

    assert is_database_outage(OperationalError(text)) is outage


def test_a_broken_statement_is_a_500_not_a_503(api_client, monkeypatch):
    from django.test import Client

    def broken(*args, **kwargs):
        raise OperationalError("no such table: apikeys_apikey")

    monkeypatch.setattr("apikeys.authentication.authenticate_api_key", broken)
    response = Client(raise_request_exception=False).get("/api/v1/users/whoami", HTTP_X_API_KEY="lfsk_anything")
    assert response.status_code == 500
    assert "no such table" not in response.content.decode()
