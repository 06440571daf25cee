"""Rate limits and lockouts, counted in Django's cache with atomic operations only.

Every limit of the site is one ``Throttle`` here: sign-in failures (``users.throttling``), failed
API-key authentications and leak reports per client address, and requests per API key
(``apikeys.throttling``).

A window opens at the first event counted for an identity (an address, a key) and lasts
``Rate.seconds``; it admits ``Rate.limit`` events. The whole window is one integer in the cache:
the second it opened (counted from ``EPOCH``) above the low ``COUNT_BITS`` bits, and the events
counted so far in them. So ``cache.add`` opens a window, ``cache.incr`` counts an event and
returns the count and the window's start together, and a single ``cache.get`` tells whether the
limit is reached and for how long. ``add`` and ``incr`` are atomic in Redis (``CACHE_URL``), in
the default database cache (``core.cache``) and in one process's memory: nothing reads
a count, changes it and writes it back, so every worker of every server sees one count, and
the documented limits hold exactly within a window whichever worker answers.

Only the edges of a window are not atomic: when ``incr`` finds the entry gone (expired between
``add`` and ``incr``) or still holding a window that has ended, the window is restarted with a
plain ``set``, so two workers doing that in the same instant may count one event less.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import time
from dataclasses import dataclass

from django.core.cache import cache

EPOCH = 1_700_000_000  # 2023-11-14: start seconds stay below 2**31 (and the value below 2**63) until 2091
COUNT_BITS = 32
_COUNT_MASK = (1 << COUNT_BITS) - 1
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE = re.compile(r"\s*([0-9]+)\s*/\s*([a-z]+)\s*")


@dataclass(frozen=True)
class Rate:
    """At most ``limit`` events per window of ``seconds``."""

    limit: int
    seconds: int

    @classmethod
    @functools.lru_cache(maxsize=256)  # read from settings or a key at every request
    def parse(cls, text: str | None) -> Rate | None:
        """Read DRF's rate syntax ("20/min", "10/s", "5000/hour"); empty or None means no limit."""
        if not text:
            return None
        match = _RATE.fullmatch(text.lower())
        if match is None or match.group(2)[0] not in _PERIODS or int(match.group(1)) < 1:
            raise ValueError(f"Not a rate: {text!r}")
        return cls(int(match.group(1)), _PERIODS[match.group(2)[0]])


@dataclass(frozen=True)
class Window:
    """One identity's current window: the events counted in it, and when it ends (a Unix time)."""

    count: int
    ends_at: float

    def seconds_left(self, now: float) -> int:
        """Whole seconds until the window ends, at least 1 (a Retry-After value)."""
        return max(1, math.ceil(self.ends_at - now))


class Throttle:
    """Counts events of one kind (``scope``) per identity, ``rate.limit`` per window."""

    def __init__(self, scope: str, rate: Rate):
        self.scope = scope
        self.rate = rate

    def key(self, ident: str) -> str:
        # Hashed, so any address or id, however long or odd, makes a short valid cache key.
        return f"throttle:{self.scope}:{hashlib.sha256(ident.encode()).hexdigest()[:32]}"

    def window(self, ident: str, *, now: float | None = None) -> Window | None:
        """The identity's open window (one cache read), or None when there is none."""
        return self._open_window(cache.get(self.key(ident)), time.time() if now is None else now)

    def seconds_blocked(self, ident: str, *, now: float | None = None) -> int:
        """How long the identity must wait before its next event is admitted (0: not at its limit)."""
        now = time.time() if now is None else now
        return self.blocked_for(self.window(ident, now=now), now)

    def blocked_for(self, window: Window | None, now: float) -> int:
        if window is None or window.count < self.rate.limit:
            return 0
        return window.seconds_left(now)

    def hit(self, ident: str, *, now: float | None = None) -> Window:
        """Count one event atomically; return the window with it (its count may exceed the limit)."""
        now = time.time() if now is None else now
        key = self.key(ident)
        try:
            value = cache.incr(key)  # the common case: the window is open
        except ValueError:  # none yet: open one (only one of several racing workers can), then count
            cache.add(key, _pack(now, 0), timeout=self.rate.seconds)
            try:
                value = cache.incr(key)
            except ValueError:  # expired again in between
                value = None
        window = self._open_window(value, now)
        if window is None:  # gone, or a window that has ended and not yet expired from the cache
            return self.restart(ident, count=1, now=now)
        return window

    def restart(self, ident: str, *, count: int, now: float | None = None) -> Window:
        """Open a new window now holding ``count`` events: at the limit, that is a full-length lockout."""
        now = time.time() if now is None else now
        cache.set(self.key(ident), _pack(now, count), timeout=self.rate.seconds)
        return Window(count, int(now) + self.rate.seconds)

    def reset(self, ident: str) -> None:
        cache.delete(self.key(ident))

    def _open_window(self, value, now: float) -> Window | None:
        if value is None:
            return None
        window = Window(value & _COUNT_MASK, (value >> COUNT_BITS) + EPOCH + self.rate.seconds)
        return window if window.ends_at > now else None


def windows(throttles: list[tuple[Throttle, str]], *, now: float) -> list[Window | None]:
    """Read several identities' windows in one cache round trip (``get_many``)."""
    keys = [throttle.key(ident) for throttle, ident in throttles]
    values = cache.get_many(keys)
    return [throttle._open_window(values.get(key), now) for (throttle, _ident), key in zip(throttles, keys, strict=True)]


def _pack(now: float, count: int) -> int:
    return ((int(now) - EPOCH) << COUNT_BITS) + count
