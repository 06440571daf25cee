"""core.throttling: windows counted with cache.add + cache.incr, exact under concurrency."""

import threading

import pytest
from django.core.cache import cache
from django.db import connections

from core.throttling import COUNT_BITS, EPOCH, Rate, Throttle, Window, windows

pytestmark = pytest.mark.django_db

NOW = 1_800_000_000.25


@pytest.mark.parametrize(("text", "rate"), [
    ("20/min", Rate(20, 60)), ("10/s", Rate(10, 1)), ("5000/hour", Rate(5000, 3600)), ("100000/day", Rate(100000, 86400)),
    ("3/m", Rate(3, 60)), ("", None), (None, None),
])
def test_rates_use_drf_syntax(text, rate):
    assert Rate.parse(text) == rate


@pytest.mark.parametrize("text", ["20", "0/min", "x/min", "20/fortnight", "-1/s"])
def test_a_malformed_rate_is_refused(text):
    with pytest.raises(ValueError):
        Rate.parse(text)


def test_a_window_opens_at_the_first_event_and_admits_the_limit():
    throttle = Throttle("test", Rate(3, 60))
    counts = [throttle.hit("a", now=NOW + second).count for second in range(4)]
    assert counts == [1, 2, 3, 4]
    assert throttle.window("a", now=NOW + 10) == Window(4, int(NOW) + 60)
    assert throttle.seconds_blocked("a", now=NOW + 10) == 50
    assert throttle.seconds_blocked("b", now=NOW + 10) == 0


def test_under_the_limit_nobody_waits_and_after_the_window_the_count_starts_again():
    throttle = Throttle("test", Rate(3, 60))
    throttle.hit("a", now=NOW)
    throttle.hit("a", now=NOW)
    assert throttle.seconds_blocked("a", now=NOW + 1) == 0
    throttle.hit("a", now=NOW + 2)
    assert throttle.seconds_blocked("a", now=NOW + 59) == 1
    assert throttle.window("a", now=NOW + 60) is None  # still in the cache, but over
    assert throttle.hit("a", now=NOW + 61) == Window(1, int(NOW) + 61 + 60)


def test_identities_and_scopes_count_apart():
    first, second = Throttle("one", Rate(5, 60)), Throttle("two", Rate(5, 60))
    first.hit("a", now=NOW)
    first.hit("a", now=NOW)
    first.hit("b", now=NOW)
    second.hit("a", now=NOW)
    assert [w.count for w in windows([(first, "a"), (first, "b"), (second, "a"), (second, "b")], now=NOW)[:3]] == [2, 1, 1]
    assert windows([(second, "b")], now=NOW) == [None]


def test_restart_at_the_limit_is_a_lockout_of_a_whole_window_from_now():
    throttle = Throttle("test", Rate(3, 900))
    throttle.hit("a", now=NOW)
    assert throttle.restart("a", count=3, now=NOW + 800) == Window(3, int(NOW + 800) + 900)
    assert throttle.seconds_blocked("a", now=NOW + 1000) == 700


def test_reset_forgets_the_identity():
    throttle = Throttle("test", Rate(1, 60))
    throttle.hit("a", now=NOW)
    throttle.reset("a")
    assert throttle.window("a", now=NOW) is None


def test_the_count_and_the_start_share_one_integer_without_overlap():
    throttle = Throttle("test", Rate(10**9, 86400))
    throttle.hit("a", now=NOW)
    stored = cache.get(throttle.key("a"))
    assert stored >> COUNT_BITS == int(NOW) - EPOCH and stored & ((1 << COUNT_BITS) - 1) == 1
    assert stored < 2**63  # fits Redis's signed 64-bit INCR


def test_any_identity_makes_a_short_valid_cache_key():
    key = Throttle("sign-in:pair", Rate(1, 1)).key("2001:db8::1\n" + "ü " * 500)
    assert len(key) < 80 and " " not in key


@pytest.mark.django_db(transaction=True)
def test_concurrent_counting_loses_no_event():
    """Threads with their own database connections (or Redis clients) race on one counter."""
    throttle = Throttle("race", Rate(10**6, 600))
    threads_count, hits_each = 6, 40
    start = threading.Barrier(threads_count)
    seen: list[int] = []

    def worker():
        start.wait()
        try:
            for _ in range(hits_each):
                seen.append(throttle.hit("one address").count)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    total = threads_count * hits_each
    assert throttle.window("one address").count == total
    assert sorted(seen) == list(range(1, total + 1))  # every count handed out exactly once
