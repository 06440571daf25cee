"""core.sqlite: the writers of one process take turns on a lock of their own, which mirrors
SQLite's write lock, is always given back, and never blocks a reader or waits forever; and the
connections a request closes are kept, clean ones only, for the next one opened."""

import os
import sqlite3
import threading
import time

import pytest
from django.contrib.auth import get_user_model
from django.db import OperationalError, connection, connections, transaction

from core.sqlite.base import IDLE_CONNECTIONS, idle_connections, write_lock

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLite backend's own behaviour"),
]


def lock():
    return write_lock(str(connection.settings_dict["NAME"]))


def in_thread(work):
    """Run ``work()`` on a thread of its own (its own connection); return (thread, outcome dict)."""
    outcome = {}

    def target():
        try:
            outcome["value"] = work()
        except Exception as error:  # noqa: BLE001  (handed to the test)
            outcome["error"] = error
        finally:
            outcome["done_at"] = time.monotonic()
            connections.close_all()

    thread = threading.Thread(target=target)
    thread.start()
    return thread, outcome


def test_a_transaction_holds_the_lock_from_begin_to_commit_or_rollback():
    assert not lock().locked()
    with transaction.atomic():
        assert connection.holds_write_lock and lock().locked()
        with transaction.atomic():  # a savepoint: no second turn
            assert lock().locked()
        assert lock().locked()
    assert not lock().locked() and not connection.holds_write_lock
    with pytest.raises(RuntimeError), transaction.atomic():
        get_user_model().objects.create_user(username="rolled-back", password="x-password-1")
        raise RuntimeError("undo")
    assert not lock().locked()
    assert not get_user_model().objects.filter(username="rolled-back").exists()


def test_a_connection_closed_inside_a_transaction_gives_the_lock_back():
    other = connections.create_connection("default")
    other.ensure_connection()
    other._start_transaction_under_autocommit()  # what atomic() does first
    assert other.holds_write_lock and lock().locked()
    other.close()
    assert not other.holds_write_lock and not lock().locked()


def test_a_write_outside_a_transaction_waits_its_turn_and_a_read_does_not():
    user = get_user_model().objects.create_user(username="writer", password="x-password-1")
    lock().acquire()
    try:
        reader, read = in_thread(lambda: get_user_model().objects.filter(pk=user.pk).exists())
        reader.join(5)
        assert read == {"value": True, "done_at": read["done_at"]}  # no wait for the lock

        writer, wrote = in_thread(lambda: get_user_model().objects.filter(pk=user.pk).update(first_name="turn"))
        time.sleep(0.3)
        assert "done_at" not in wrote  # waiting for its turn
        released_at = time.monotonic()
    finally:
        lock().release()
    writer.join(5)
    assert wrote["value"] == 1
    # It went the moment the lock was free: no busy-handler sleep after it.
    assert wrote["done_at"] - released_at < 0.25
    assert not lock().locked()


def test_a_writer_waits_at_most_the_busy_timeout_then_lets_sqlite_decide():
    other = connections.create_connection("default")
    other.settings_dict = {**other.settings_dict, "OPTIONS": {**other.settings_dict["OPTIONS"], "timeout": 0.2}}
    lock().acquire()
    try:
        started = time.monotonic()
        with other.write_lock_held():
            waited = time.monotonic() - started
            assert not other.holds_write_lock  # went ahead without its turn
    finally:
        lock().release()
        other.close()
    assert 0.15 < waited < 2


def test_many_writers_of_one_process_count_exactly_and_none_is_refused():
    user = get_user_model().objects.create_user(username="counted", password="x-password-1")
    from django.db.models import F, Value
    from django.db.models.functions import Concat

    def increments():
        for _ in range(18):
            get_user_model().objects.filter(pk=user.pk).update(last_name=Concat(F("last_name"), Value("x")))
            with transaction.atomic():
                get_user_model().objects.filter(pk=user.pk).update(first_name=Concat(F("first_name"), Value("y")))

    threads = [in_thread(increments) for _ in range(8)]
    for thread, _ in threads:
        thread.join(60)
    assert [outcome.get("error") for _, outcome in threads] == [None] * 8
    user.refresh_from_db()
    assert (len(user.last_name), len(user.first_name)) == (144, 144)
    assert not lock().locked()


@pytest.mark.parametrize("query", [
    "SELECT %s", "SELECT '%%s', %s WHERE x LIKE '%%a%%'", "UPDATE t SET a = %s WHERE b = %s", "SELECT 1",
])
def test_statements_are_rewritten_as_django_rewrites_them(query):
    from django.db.backends.sqlite3.base import SQLiteCursorWrapper

    with connection.cursor() as cursor:
        ours = cursor.cursor.convert_query(query)
    raw = connection.connection.cursor(factory=SQLiteCursorWrapper)
    assert ours == raw.convert_query(query) and ours == cursor.cursor.convert_query(query)
    assert cursor.cursor.convert_query("SELECT %(a)s", param_names=["a"]) == "SELECT :a"


def test_a_remembered_statement_still_runs_with_its_parameters():
    with connection.cursor() as cursor:
        for value in ("one", "two"):
            cursor.execute("SELECT %s, '%%'", [value])
            assert cursor.fetchone() == (value, "%")


# --- Idle connections kept for the next request ------------------------------------------------------

def opened_and_closed(work=None):
    """Open a connection of its own (as a request's thread does), run ``work`` on it, close it;
    return its raw SQLite connection."""
    wrapper = connections.create_connection("default")
    wrapper.ensure_connection()
    raw = wrapper.connection
    if work is not None:
        work(wrapper)
    wrapper.close()
    return raw


@pytest.fixture
def no_idle_connections():
    idle_connections.close_all()
    yield
    idle_connections.close_all()


def test_a_closed_connection_is_handed_to_the_next_one_opened_and_works(no_idle_connections):
    first = opened_and_closed()
    wrapper = connections.create_connection("default")
    wrapper.ensure_connection()
    assert wrapper.connection is first
    with wrapper.cursor() as cursor:
        cursor.execute("PRAGMA foreign_keys")
        assert cursor.fetchone() == (1,)
    wrapper.close()


def test_a_connection_left_in_a_transaction_or_after_an_error_is_closed_not_kept(no_idle_connections):
    def in_transaction(wrapper):
        wrapper._start_transaction_under_autocommit()
        assert wrapper.connection.in_transaction

    def failed(wrapper):
        with pytest.raises(OperationalError), wrapper.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")
        assert wrapper.errors_occurred

    for work in (in_transaction, failed):
        raw = opened_and_closed(work)
        wrapper = connections.create_connection("default")
        wrapper.ensure_connection()
        assert wrapper.connection is not raw
        wrapper.close()
    assert not lock().locked()


def test_constraint_checks_are_on_again_in_a_kept_connection(no_idle_connections):
    raw = opened_and_closed(lambda wrapper: wrapper.disable_constraint_checking())
    wrapper = connections.create_connection("default")
    wrapper.ensure_connection()
    assert wrapper.connection is raw
    assert wrapper.connection.execute("PRAGMA foreign_keys").fetchone() == (1,)
    wrapper.close()


def test_at_most_the_bound_is_kept_and_never_across_a_fork(no_idle_connections, monkeypatch):
    wrappers = [connections.create_connection("default") for _ in range(IDLE_CONNECTIONS + 3)]
    for wrapper in wrappers:
        wrapper.ensure_connection()
    raws = [wrapper.connection for wrapper in wrappers]
    for wrapper in wrappers:
        wrapper.close()
    kept = [raw for raw in raws if _is_open(raw)]
    assert len(kept) == IDLE_CONNECTIONS
    monkeypatch.setattr("core.sqlite.base.os.getpid", lambda: -1)  # as a forked child sees it
    wrapper = connections.create_connection("default")
    wrapper.ensure_connection()
    assert wrapper.connection not in raws
    wrapper.close()


def test_a_connection_to_a_replaced_database_file_is_not_handed_out(tmp_path, no_idle_connections):
    name = str(tmp_path / "replaced.sqlite3")
    sqlite3.connect(name).close()
    stale = sqlite3.connect(name, check_same_thread=False)
    assert idle_connections.give_back(name, idle_connections.identity(name), stale)
    os.remove(name)
    sqlite3.connect(name).close()  # a new file of the same name (a test suite recreates its database)
    assert idle_connections.take(name) is None
    assert not _is_open(stale)
    # Replaced while the connection was in use: it is kept with the file it was opened on.
    opened_on, in_use = idle_connections.identity(name), sqlite3.connect(name, check_same_thread=False)
    os.remove(name)
    sqlite3.connect(name).close()
    assert idle_connections.give_back(name, opened_on, in_use)
    assert idle_connections.take(name) is None
    assert not _is_open(in_use)


def _is_open(raw) -> bool:
    try:
        raw.execute("SELECT 1")
    except sqlite3.ProgrammingError:  # "Cannot operate on a closed database."
        return False
    return True


# --- Between processes: the lock file -------------------------------------------------------------

HOLD_IN_ANOTHER_PROCESS = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
fcntl.flock(fd, fcntl.LOCK_UN)
"""


def hold_in_another_process(path, seconds):
    import subprocess
    import sys

    holder = subprocess.Popen([sys.executable, "-c", HOLD_IN_ANOTHER_PROCESS, str(path), str(seconds)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_writer_waits_for_another_process_and_goes_in_as_soon_as_it_lets_go(tmp_path):
    from core.sqlite.base import FileLock

    path = tmp_path / "db.sqlite3-writelock"
    holder = hold_in_another_process(path, 0.4)
    between_processes = FileLock(str(path))
    started = time.monotonic()
    assert between_processes.acquire(time.monotonic() + 10)
    waited = time.monotonic() - started
    assert 0.2 < waited < 2  # waited for the other process, not for a busy timeout's whole length
    between_processes.release()
    holder.wait(timeout=10)


def test_a_writer_gives_up_on_the_lock_file_at_its_deadline(tmp_path):
    from core.sqlite.base import FileLock

    path = tmp_path / "db.sqlite3-writelock"
    holder = hold_in_another_process(path, 3)
    started = time.monotonic()
    assert not FileLock(str(path)).acquire(time.monotonic() + 0.2)
    assert time.monotonic() - started < 1.5
    holder.kill()
    holder.wait(timeout=10)


def test_the_lock_file_is_opened_again_in_a_forked_process(tmp_path, monkeypatch):
    from core.sqlite import base as sqlite_base

    between_processes = sqlite_base.FileLock(str(tmp_path / "db.sqlite3-writelock"))
    assert between_processes.acquire(time.monotonic() + 1)
    first = between_processes._fd
    between_processes.release()
    monkeypatch.setattr(sqlite_base.os, "getpid", lambda: -1)  # as a child sees itself after fork
    assert between_processes.acquire(time.monotonic() + 1)
    assert between_processes._fd != first  # its own open file, whose lock the parent's does not share
    between_processes.release()
    with pytest.raises(OSError):  # the inherited descriptor is not leaked
        os.fstat(first)


def test_a_transaction_on_a_database_file_holds_the_lock_file(tmp_path):
    import subprocess
    import sys

    from core.sqlite.base import file_lock

    name = str(tmp_path / "db.sqlite3")
    probe = ("import fcntl, os, sys\nfd = os.open(sys.argv[1], os.O_RDWR)\n"
             "try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB); print('free')\n"
             "except BlockingIOError:\n    print('taken')\n")

    def seen_from_another_process() -> str:
        return subprocess.run([sys.executable, "-c", probe, f"{name}-writelock"], capture_output=True, text=True,
                              timeout=30).stdout.strip()

    other = connections.create_connection("default")
    other.settings_dict = {**other.settings_dict, "NAME": name}
    try:
        with other.cursor() as cursor:
            cursor.execute("CREATE TABLE t (n integer)")
        # As transaction.atomic begins and ends a transaction (BEGIN IMMEDIATE here).
        other.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)
        with other.cursor() as cursor:
            cursor.execute("INSERT INTO t VALUES (1)")
        assert other.holds_write_lock and other._file_lock is file_lock(name)
        assert seen_from_another_process() == "taken"
        other.commit()
        other.set_autocommit(True)
        assert not other.holds_write_lock and other._file_lock is None
        assert seen_from_another_process() == "free"
    finally:
        other.close()
