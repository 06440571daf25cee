"""core.sqlite: the writers of one process take turns on a lock of their own, which mirrors
SQLite's write lock, is always given back, and never blocks a reader or waits forever."""

import threading
import time

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections, transaction

from core.sqlite.base import write_lock

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
