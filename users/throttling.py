"""Slow down password guessing on the sign-in page, with counters in Django's cache.

Two counters, both reset by the window expiring:

* per client IP and username: a few failures lock that pair (the usual guessing of one account);
* per client IP alone: a higher limit, so trying many usernames from one address locks it too.

While locked, every attempt is refused before the password is checked, so a right guess during
the lockout tells the attacker nothing. A successful sign-in clears the pair's counter.
The cache must be shared by every app server (CACHE_URL=redis://... in production), or each
worker counts on its own. The client's address comes from ``langflow_site.net.client_ip``, which
reads X-Forwarded-For only from TRUSTED_PROXIES.
"""

from __future__ import annotations

import hashlib
import math
import time

from django.conf import settings
from django.core.cache import cache

from langflow_site.net import client_ip

_PREFIX = "login-throttle"


def _username_token(username: str) -> str:
    # Hashed so any username, however long or odd, makes a valid cache key.
    return hashlib.sha256(username.strip().casefold().encode()).hexdigest()[:32]


def _counters(request, username: str) -> list[tuple[str, int]]:
    ip = client_ip(request) or "unknown"
    return [
        (f"{_PREFIX}:pair:{ip}:{_username_token(username)}", settings.LOGIN_THROTTLE_FAILURES),
        (f"{_PREFIX}:ip:{ip}", settings.LOGIN_THROTTLE_IP_FAILURES),
    ]


def seconds_locked(request, username: str) -> int:
    """Return how many seconds sign-in stays refused for this client and username (0: not locked)."""
    now = time.time()
    remaining = 0.0
    for key, _limit in _counters(request, username):
        until = cache.get(f"{key}:locked-until")
        if until is not None:
            remaining = max(remaining, until - now)
    return math.ceil(remaining) if remaining > 0 else 0


def record_failure(request, username: str) -> None:
    """Count one failed sign-in; lock the counter that reaches its limit for the whole window."""
    window = settings.LOGIN_THROTTLE_WINDOW
    for key, limit in _counters(request, username):
        cache.add(key, 0, timeout=window)
        try:
            failures = cache.incr(key)
        except ValueError:  # expired between add() and incr()
            cache.set(key, 1, timeout=window)
            failures = 1
        if failures >= limit:
            cache.set(f"{key}:locked-until", time.time() + window, timeout=window)


def clear_failures(request, username: str) -> None:
    """Forget the failures of this client and username after a successful sign-in."""
    pair_key, _limit = _counters(request, username)[0]
    cache.delete(pair_key)


def wait_message(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    unit = "minute" if minutes == 1 else "minutes"
    return f"Too many failed sign-in attempts. Wait {minutes} {unit} before trying again."
