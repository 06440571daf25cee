"""Django's SQLite backend, with the writers of one process queued on a lock of their own.

SQLite lets one writer in at a time, and a writer that finds the lock taken sleeps in SQLite's
busy handler: 1 ms, then 2, 5, 10, 15... ms between tries, whether the lock came free after 50
microseconds or not. Under load the threads of one worker (``core.dbthreads``: a key's use, a
run's chat messages, the request log) kept colliding with each other that way, and their
requests waited out the sleeps. Here a process-wide lock per database file is taken before a
write begins (``BEGIN IMMEDIATE``, or a write statement outside a transaction) and given back
when it ends: the threads of a process take turns and the next one starts the moment the lock
is free. Only writers of other processes (the other workers) still meet SQLite's busy handler.

Between processes (the workers, the job workers, a management command) the writers take turns
the same way on a lock file beside the database (``<database>-writelock``, ``flock``), held by
this process's writer for as long as it holds the process lock: a writer of another worker no
longer sleeps out SQLite's busy handler (with a process lock held, so every writer of its
process waited too), but polls the lock file (50 us, doubling to 1 ms) and starts as soon as it
is free.

The locks mirror SQLite's own (``transaction_mode`` IMMEDIATE takes the write lock at BEGIN), so
they add no waiting SQLite would not impose. They are waited for at most the connection's busy
timeout; past that the statement goes ahead and SQLite's busy handling decides, as before.

It keeps the connections the requests close, up to ``IDLE_CONNECTIONS`` per database file and
process, and hands them to the next request that opens one. Under ASGI a request's sync code
(a page, the key management API) runs on a thread of its own and closes its connection when it
ends; opening a new one cost more than half a millisecond (connect, Django's functions and
pragmas, and SQLite parsing the whole schema again at the first statement), several times the
query such a request makes. A connection goes back only clean: no transaction open, no error,
the database file still the one it was opened on (a test suite recreates it).

It also remembers the "qmark" form of the statements it has run: Django rewrites every
statement's ``%s`` to ``?`` with a regular expression on each execution, which cost more than
running the key check's own statements; the hot path runs the same few strings over and over.
"""

from __future__ import annotations

import fcntl
import functools
import os
import threading
import time
from typing import Any

from django.db.backends.sqlite3 import base

_WRITE_STATEMENTS = ("INSERT", "UPDATE", "DELETE", "REPLACE")
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()

# Idle connections kept per database file and process (each holds SQLite's page cache).
IDLE_CONNECTIONS = 8


def write_lock(name: str) -> threading.Lock:
    """The lock of the writers of this process to the database file ``name``.

    A plain lock, not a re-entrant one: it is given back by whichever thread ends the
    transaction, and one thread never writes through two connections to the same file at once
    (if it did, SQLite itself would have it wait on its own lock).
    """
    lock = _locks.get(name)
    if lock is None:
        with _locks_guard:
            lock = _locks.setdefault(name, threading.Lock())
    return lock


class FileLock:
    """This process's hold on ``<database>-writelock``, shared by its threads (they take turns on
    ``write_lock`` first). Opened once per process: a descriptor inherited across a fork shares
    its lock with the parent, which would let both in."""

    FIRST_WAIT = 0.00005
    LONGEST_WAIT = 0.001

    def __init__(self, path: str):
        self.path = path
        self._fd: int | None = None
        self._pid = 0

    def _descriptor(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            inherited, self._fd = self._fd, os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
            if inherited is not None:
                os.close(inherited)  # the parent's: closing this copy leaves the parent's lock as it is
        return self._fd

    def acquire(self, deadline: float) -> bool:
        """Take the lock, trying until ``deadline`` (``time.monotonic``); False if it stayed taken
        (or the file cannot be opened: SQLite's own locking still holds)."""
        try:
            fd = self._descriptor()
        except OSError:
            return False
        wait = self.FIRST_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                pass
            if time.monotonic() >= deadline:
                return False
            time.sleep(wait)
            wait = min(wait * 2, self.LONGEST_WAIT)

    def release(self) -> None:
        fcntl.flock(self._descriptor(), fcntl.LOCK_UN)


_file_locks: dict[str, FileLock] = {}


def file_lock(name: str) -> FileLock:
    """The lock file of the writers of every process to the database file ``name``."""
    lock = _file_locks.get(name)
    if lock is None:
        with _locks_guard:
            lock = _file_locks.setdefault(name, FileLock(f"{name}-writelock"))
    return lock


def _is_write(query: str) -> bool:
    return query.lstrip()[:7].upper().startswith(_WRITE_STATEMENTS)


@functools.lru_cache(maxsize=1024)
def _qmark(query: str) -> str:
    return base.FORMAT_QMARK_REGEX.sub("?", query).replace("%%", "%")


class CursorWrapper(base.SQLiteCursorWrapper):
    """Takes the process's write lock around a write statement run outside a transaction."""

    database: DatabaseWrapper

    def execute(self, query, params=None):
        if self.database.holds_write_lock or not _is_write(query):
            return super().execute(query, params)
        with self.database.write_lock_held():
            return super().execute(query, params)

    def executemany(self, query, param_list):
        if self.database.holds_write_lock or not _is_write(query):
            return super().executemany(query, param_list)
        with self.database.write_lock_held():
            return super().executemany(query, param_list)

    def convert_query(self, query, *, param_names=None):
        if param_names is None:  # "format" style, the ORM's: the same rewrite, remembered
            return _qmark(query)
        return super().convert_query(query, param_names=param_names)


class _IdleConnections:
    """The idle connections of this process to one database file, newest last.

    Keyed by process: a connection must never be used on both sides of a fork. Each carries the
    file's identity (device, inode) as it was when the connection was opened, and is dropped if
    the file has changed since.
    """

    def __init__(self) -> None:
        self._idle: dict[tuple[int, str], list[tuple[tuple[int, int], Any]]] = {}
        self._guard = threading.Lock()

    @staticmethod
    def identity(name: str) -> tuple[int, int] | None:
        try:
            info = os.stat(name)
        except OSError:
            return None
        return info.st_dev, info.st_ino

    def take(self, name: str) -> tuple[tuple[int, int], Any] | None:
        """An idle connection to the file ``name`` as it is now, with that identity; or None."""
        identity = self.identity(name)
        with self._guard:
            idle = self._idle.get((os.getpid(), name))
            while idle:
                opened_on, connection = idle.pop()
                if opened_on == identity:
                    return opened_on, connection
                connection.close()  # the file was replaced: this one reads the old one
        return None

    def give_back(self, name: str, opened_on: tuple[int, int] | None, connection) -> bool:
        """Keep ``connection`` (opened on the file whose identity was ``opened_on``) for the next
        request; False when it cannot be told apart from a replaced file or enough are kept."""
        if opened_on is None:
            return False
        with self._guard:
            idle = self._idle.setdefault((os.getpid(), name), [])
            if len(idle) >= IDLE_CONNECTIONS:
                return False
            idle.append((opened_on, connection))
            return True

    def close_all(self) -> None:
        with self._guard:
            mine = [key for key in self._idle if key[0] == os.getpid()]
            for key in mine:
                for _, connection in self._idle.pop(key):
                    connection.close()


idle_connections = _IdleConnections()


class DatabaseWrapper(base.DatabaseWrapper):
    holds_write_lock = False
    _file_lock: FileLock | None = None  # held with the process lock, unless it could not be had in time
    _opened_on: tuple[int, int] | None = None  # the identity of the file the connection is on

    def get_new_connection(self, conn_params):
        if self.is_in_memory_db():
            return super().get_new_connection(conn_params)
        name = str(conn_params["database"])
        kept = idle_connections.take(name)
        if kept is not None:
            self._opened_on, connection = kept
            # As Django leaves a new one; a loaddata that failed half-way may have left
            # constraint checks off.
            connection.execute("PRAGMA foreign_keys = ON")
            return connection
        connection = super().get_new_connection(conn_params)
        self._opened_on = idle_connections.identity(name)  # the file SQLite has just opened
        return connection

    def _reusable(self) -> bool:
        connection = self.connection
        return (connection is not None and not self.is_in_memory_db() and not self.in_atomic_block
                and not self.errors_occurred and not connection.in_transaction)

    def create_cursor(self, name=None):
        cursor = self.connection.cursor(factory=CursorWrapper)
        cursor.database = self
        return cursor

    def _acquire_write_lock(self) -> None:
        name = str(self.settings_dict["NAME"])
        lock = write_lock(name)
        timeout = float(self.settings_dict.get("OPTIONS", {}).get("timeout", 5))
        deadline = time.monotonic() + timeout
        if lock.acquire(timeout=timeout):
            self.holds_write_lock = True
            self._write_lock = lock
            if not self.is_in_memory_db():
                between_processes = file_lock(name)
                if between_processes.acquire(deadline):
                    self._file_lock = between_processes

    def _release_write_lock(self) -> None:
        if self.holds_write_lock:
            self.holds_write_lock = False
            between_processes = self._file_lock
            if between_processes is not None:
                self._file_lock = None
                between_processes.release()
            self._write_lock.release()

    def write_lock_held(self):
        return _Held(self)

    def _start_transaction_under_autocommit(self):
        # Every transaction of this site may write (transaction_mode IMMEDIATE takes SQLite's
        # write lock at BEGIN), so every one queues here first.
        self._acquire_write_lock()
        try:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]  # not in django-stubs
        except BaseException:
            self._release_write_lock()
            raise

    def _commit(self):
        try:
            super()._commit()  # type: ignore[misc]  # not in django-stubs
        finally:
            self._release_write_lock()

    def _rollback(self):
        try:
            super()._rollback()  # type: ignore[misc]  # not in django-stubs
        finally:
            self._release_write_lock()

    def _close(self):
        try:
            if self._reusable() and idle_connections.give_back(
                    str(self.settings_dict["NAME"]), self._opened_on, self.connection):
                return
            super()._close()  # type: ignore[misc]  # not in django-stubs
        finally:
            self._release_write_lock()


class _Held:
    """``with``: the process's write lock for one statement (none if it could not be had in time)."""

    def __init__(self, database: DatabaseWrapper):
        self.database = database

    def __enter__(self):
        self.database._acquire_write_lock()

    def __exit__(self, *exc):
        self.database._release_write_lock()
