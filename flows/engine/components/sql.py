"""SQL Database: read-only queries against the databases the operator lists, by name.

A flow never chooses where to connect: its ``database_url`` field names one of the databases
in ``settings.SQL_DATABASES`` (``name=url`` pairs), and a field that holds a URL instead is
refused. Read-only is enforced by the database itself, never by reading the SQL:

- SQLite: the file is opened with ``mode=ro`` and ``PRAGMA query_only``; attaching another file
  (``ATTACH``, ``VACUUM INTO``) is impossible (no attached databases allowed), and an authorizer
  refuses every PRAGMA but a few that only describe tables (so ``query_only`` cannot be turned
  off). Python's driver runs one statement per call. The query runs on a thread, and a progress
  handler interrupts it at the deadline.
- PostgreSQL: one connection per query (psycopg, async), ``SET TRANSACTION READ ONLY`` and
  ``statement_timeout`` before the query, which is sent with the extended protocol (one statement,
  so no ``COMMIT; ...``) and read row by row; the transaction is rolled back. Give it a role that
  may only read, too.

At most ``SQL_MAX_ROWS`` rows are read (the rest is never fetched), and their size counts against
the run's value limit as they come; a query ends at ``SQL_TIMEOUT`` seconds or the run's budget.
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import logging
import math
import pathlib
import sqlite3
import time
import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings

from ..errors import ComponentError, UpstreamError
from ..limits import LimitExceeded, ValueTooLarge, json_size
from .base import Component, register

logger = logging.getLogger("flows.engine.sql")

SQLITE_SCHEMES = frozenset({"sqlite"})
POSTGRES_SCHEMES = frozenset({"postgres", "postgresql", "pgsql"})
# PRAGMAs a query may use on SQLite: they only describe the schema (every other one is refused,
# ``query_only`` and ``writable_schema`` first among them).
READ_PRAGMAS = frozenset({"table_info", "table_xinfo", "table_list", "index_list", "index_info",
                          "index_xinfo", "foreign_key_list"})
# How often (in SQLite virtual machine instructions) the deadline is looked at.
_PROGRESS_STEPS = 1000


@dataclass(frozen=True)
class Database:
    """One database the operator listed: ``kind`` is "sqlite" (``target`` a file path) or
    "postgresql" (``target`` a libpq URL)."""

    name: str
    kind: str
    target: str


class QueryFailed(Exception):
    """The database refused or failed the query; ``str()`` is its own message."""


class QueryTimedOut(Exception):
    pass


def looks_like_url(value: str) -> bool:
    """A connection string rather than a name (``scheme://...``, ``sqlite:...``, ``file:...``)."""
    scheme, colon, _ = value.partition(":")
    return "://" in value or bool(colon) and scheme.strip().lower() in SQLITE_SCHEMES | POSTGRES_SCHEMES | {"file"}


def parse_database(name: str, url: str) -> Database:
    """The listed database ``name`` from its URL; raise ValueError for a URL this server cannot use."""
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme in SQLITE_SCHEMES:
        # sqlite:////absolute/path.db (or sqlite:///relative/path.db, from the working directory)
        path = rest[1:] if rest.startswith("/") else rest
        if not path or path == ":memory:" or "?" in path:
            raise ValueError(f"SQL_DATABASES entry {name!r} must be sqlite:////path/to/file.db")
        return Database(name=name, kind="sqlite", target=path)
    if scheme in POSTGRES_SCHEMES and rest:
        return Database(name=name, kind="postgresql", target="postgresql://" + rest)
    raise ValueError(f"SQL_DATABASES entry {name!r} must be a sqlite:// or postgres:// URL")


def listed_databases() -> dict[str, str]:
    databases = settings.SQL_DATABASES
    return databases if isinstance(databases, dict) else {}


# --- Values ----------------------------------------------------------------------------------------

def _cell(value: Any) -> Any:
    """A column's value as JSON can carry it."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() and value.is_finite() else float(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(value).hex()
    if isinstance(value, (datetime.date, datetime.time, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, datetime.timedelta)):
        return str(value)
    if isinstance(value, (dict, list)):
        return value
    return str(value)


class _Rows:
    """Rows as they are read: at most ``max_rows``, their JSON size within ``room`` bytes."""

    def __init__(self, max_rows: int, room: int):
        self.max_rows = max_rows
        self.room = room
        self.size = 2
        self.rows: list[dict[str, Any]] = []
        self.truncated = False

    def add(self, columns: list[str], values) -> bool:
        """Keep one row; return False once the cap is reached (that row is not kept)."""
        if len(self.rows) >= self.max_rows:
            self.truncated = True
            return False
        row = {column: _cell(value) for column, value in zip(columns, values, strict=True)}
        self.size += json_size(row) + 2
        if self.size > self.room:
            raise ValueTooLarge(self.room)
        self.rows.append(row)
        return True


# --- SQLite ----------------------------------------------------------------------------------------

def _sqlite_authorizer(action: int, first, second, database, trigger) -> int:
    if action == sqlite3.SQLITE_PRAGMA and (first or "").lower() not in READ_PRAGMAS:
        return sqlite3.SQLITE_DENY
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def _sqlite_rows(path: str, query: str, rows: _Rows, timeout: float) -> _Rows:
    """Run ``query`` on the SQLite file, read-only; blocking (call it on a thread)."""
    deadline = time.monotonic() + timeout
    file = pathlib.Path(path)
    if not file.is_file():
        raise QueryFailed("the database file does not exist")
    uri = file.absolute().as_uri() + "?mode=ro"
    try:
        connection = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None,
                                     check_same_thread=False)
    except sqlite3.Error as error:
        raise QueryFailed(str(error)) from None
    try:
        try:
            connection.execute("PRAGMA query_only = ON")
            connection.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
            connection.set_authorizer(_sqlite_authorizer)
            connection.set_progress_handler(lambda: int(time.monotonic() > deadline), _PROGRESS_STEPS)
            cursor = connection.execute(query)
            columns = [column[0] for column in cursor.description or ()]
            while columns:
                batch = cursor.fetchmany(100)
                if not batch or not all(rows.add(columns, values) for values in batch):
                    break
        except sqlite3.OperationalError as error:
            if time.monotonic() > deadline and "interrupt" in str(error):
                raise QueryTimedOut() from None
            raise QueryFailed(str(error)) from None
        except (sqlite3.Error, sqlite3.Warning) as error:  # one statement at a time is a Warning/ProgrammingError
            raise QueryFailed(str(error)) from None
    finally:
        connection.close()
    return rows


# --- PostgreSQL ------------------------------------------------------------------------------------

async def _postgres_rows(url: str, query: str, rows: _Rows, timeout: float) -> _Rows:
    import psycopg
    from psycopg import errors

    try:
        connection = await psycopg.AsyncConnection.connect(url, connect_timeout=max(1, math.ceil(timeout)),
                                                           autocommit=False)
    except psycopg.Error as error:
        logger.warning("SQL database unreachable: %s", error)
        raise ConnectionError() from None
    try:
        async with connection.cursor() as cursor:
            try:
                await cursor.execute("SET TRANSACTION READ ONLY")
                await cursor.execute(f"SET LOCAL statement_timeout = {max(1, int(timeout * 1000))}")
                # stream(): the extended protocol, so the query is one statement, read row by row.
                async with aclosing(cast(AsyncGenerator[Any, None], cursor.stream(query))) as stream:
                    columns = None
                    async for values in stream:
                        if columns is None:
                            columns = [column.name for column in cursor.description or ()]
                        if not rows.add(columns, values):
                            break
            except errors.QueryCanceled:
                raise QueryTimedOut() from None
            except psycopg.OperationalError as error:
                logger.warning("SQL database connection failed: %s", error)
                raise ConnectionError() from None
            except psycopg.Error as error:
                raise QueryFailed(str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__) \
                    from None
    finally:
        await connection.close()  # the read-only transaction ends with it, unwritten
    return rows


# --- The component ---------------------------------------------------------------------------------

@register("SQLComponent")
class SQLDatabase(Component):
    """Langflow's "SQL Database": ``run_sql_query`` answers the query's rows as a DataFrame (a
    list of records). As an Agent's tool, ``query`` is the tool's argument."""

    outputs = {"run_sql_query": "run_sql_query"}

    def database(self) -> Database:
        chosen = self.text("database_url").strip()
        listed = listed_databases()
        names = ", ".join(sorted(listed)) or "none"
        if chosen and looks_like_url(chosen):
            raise self.fail("database_url", "holds a URL: this server connects only to the databases its "
                                            f"operator lists in SQL_DATABASES; name one of them ({names})")
        if not chosen:
            if len(listed) != 1:
                raise self.fail("database_url", "must name one of the databases listed in SQL_DATABASES "
                                                f"({names})")
            chosen = next(iter(listed))
        if chosen not in listed:
            raise self.fail("database_url", f"names {chosen!r}, which is not listed in SQL_DATABASES ({names})")
        try:
            return parse_database(chosen, listed[chosen])
        except ValueError as error:
            raise self.fail("database_url", f"names a database this server cannot use: {error}") from None

    async def check(self) -> None:
        """A URL or an unlisted name in ``database_url`` is a 422 before the run starts."""
        if "database_url" in self.params:
            self.database()

    async def run_sql_query(self) -> list[dict[str, Any]]:
        database = self.database()
        query = self.text("query").strip()
        if not query:
            raise self.fail("query", "is empty: write the SQL query to run")
        budget = self.context.budget
        budget.check_time(self.node.id)
        timeout = min(settings.SQL_TIMEOUT, budget.remaining())
        rows = _Rows(settings.SQL_MAX_ROWS, self.value_room())
        try:
            # The database's own deadline ends the query; this one is a backstop (a hung connect).
            async with asyncio.timeout(timeout + 1):
                if database.kind == "sqlite":
                    await asyncio.to_thread(_sqlite_rows, database.target, query, rows, timeout)
                else:
                    await _postgres_rows(database.target, query, rows, timeout)
        except ValueTooLarge:
            raise self.too_large() from None
        except (QueryTimedOut, TimeoutError):
            if budget.expired():
                raise budget.out_of_time(self.node.id) from None
            raise LimitExceeded(f"Node {self.node.id}: the query took longer than SQL_TIMEOUT "
                                f"({settings.SQL_TIMEOUT:g} s).", node_ids=(self.node.id,)) from None
        except ConnectionError:
            raise UpstreamError(f"Node {self.node.id}: could not connect to the database {database.name!r}.",
                                node_ids=(self.node.id,)) from None
        except QueryFailed as error:
            if self.boolean("add_error"):  # Langflow's "Add Error": the error is the result
                return [{"error": str(error), "query": query}]
            raise ComponentError(f"Node {self.node.id}: the query failed on database {database.name!r}: {error}",
                                 node_ids=(self.node.id,)) from None
        if rows.truncated:
            logger.info("Node %s: the query's rows stopped at SQL_MAX_ROWS (%d)", self.node.id, rows.max_rows)
        return rows.rows
