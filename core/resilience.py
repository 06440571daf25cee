"""Answer a database outage with a clear 503 instead of a 500.

When PostgreSQL restarts, the SQLite file turns read-only or its disk fills up, every query
raises ``OperationalError`` (or ``InterfaceError`` for a connection that died under us); which
of those are an outage is ``is_database_outage``'s decision. That is
the service being briefly unavailable, not a bug: clients get ``503`` with ``Retry-After`` and
can retry, and the app recovers by itself because Django opens a fresh connection (with
``CONN_HEALTH_CHECKS``) on the next request once the database is back.

DRF views route exceptions through ``REST_FRAMEWORK["EXCEPTION_HANDLER"]``, plain Django views
through middleware, so both are covered here.
"""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.template.loader import render_to_string
from rest_framework import status
from rest_framework.response import Response

from . import api
from .middleware import DualModeMiddleware

logger = logging.getLogger("core.resilience")

RETRY_AFTER_SECONDS = "5"
UNAVAILABLE_MESSAGE = "The database is unavailable right now; try again in a few seconds."
READ_ONLY_MESSAGE = "The database cannot be written to right now (read-only or out of space); try again later."

# SQLite's wording for a file it may not write; PostgreSQL's for a disk that filled up.
_WRITE_REFUSED_MARKERS = (
    "readonly database",
    "read-only",
    "disk is full",
    "disk full",
    "no space left",
    "disk i/o error",
)


# PostgreSQL's SQLSTATE classes of an unavailable or overloaded server: connection exception,
# transaction rollback (deadlock, serialization: retry), insufficient resources (disk full, too
# many connections), operator intervention (shutdown, restart, statement timeout); and the lone
# codes of a read-only server and of a lock not granted.
_OUTAGE_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57"})
_OUTAGE_SQLSTATES = frozenset({"25006", "55P03"})
# SQLite raises OperationalError for mistakes in a statement too: those are bugs, not outages.
_STATEMENT_BUG_MARKERS = (
    "syntax error",
    "no such table",
    "no such column",
    "no such function",
    "has no column named",
    "ambiguous column name",
    "wrong number of arguments",
    "unrecognized token",
    "incomplete input",
    "too many sql variables",
    "misuse",
)


def is_database_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is unavailable (a 503 the client may retry), rather than
    that a statement is wrong (a bug: a 500, with its trace in the server log).

    A connection that died under us (InterfaceError) is an outage. An OperationalError is one when
    PostgreSQL's SQLSTATE says so, or, without a SQLSTATE (a server that cannot be reached, a pool
    time-out, SQLite's locked, read-only or full file), unless its text names a statement mistake.
    """
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    sqlstate = getattr(exc.__cause__, "sqlstate", None)
    if sqlstate:
        return sqlstate[:2] in _OUTAGE_SQLSTATE_CLASSES or sqlstate in _OUTAGE_SQLSTATES
    text = str(exc).lower()
    return not any(marker in text for marker in _STATEMENT_BUG_MARKERS)


def outage_message(exc: BaseException) -> str:
    """Return what the client is told; the driver's own text stays in the server log."""
    text = str(exc).lower()
    if any(marker in text for marker in _WRITE_REFUSED_MARKERS):
        return READ_ONLY_MESSAGE
    return UNAVAILABLE_MESSAGE


def _log(exc: BaseException, where: str) -> None:
    logger.error("Database unavailable in %s: %s: %s", where, type(exc).__name__, exc)


def exception_handler(exc, context):
    """DRF's handler: a database outage becomes 503; everything else goes to ``api.exception_handler``."""
    if is_database_outage(exc):
        _log(exc, context.get("view").__class__.__name__)
        return Response(
            {"detail": outage_message(exc)},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    return api.exception_handler(exc, context)


class DatabaseOutageMiddleware(DualModeMiddleware):
    """The same 503 for plain Django views: JSON on API routes, the error page elsewhere."""

    def process_exception(self, request, exc):
        if not is_database_outage(exc):
            return None
        _log(exc, request.path)
        message = outage_message(exc)
        response: HttpResponse
        if request.path.startswith("/api/"):
            response = api.json_error(status.HTTP_503_SERVICE_UNAVAILABLE, message)
        else:
            # Rendered without the request: context processors (user, messages) would query the database.
            page = render_to_string("errors/error.html", {"title": "Temporarily unavailable", "message": message,
                                                        "status_code": status.HTTP_503_SERVICE_UNAVAILABLE})
            response = HttpResponse(page, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        response["Retry-After"] = RETRY_AFTER_SECONDS
        return response
