"""Slow down password guessing: one throttle shared by every place that checks a password.

The sign-in page, the admin's sign-in (both through ``users.backends.ThrottledModelBackend``)
and the current-password check of a password change (``users.forms``) all go through
``check_password``. Two counters (``core.throttling``), both per client address:

* per address and username: LOGIN_THROTTLE_FAILURES failures lock that pair (guessing one account);
* per address alone: LOGIN_THROTTLE_IP_FAILURES failures for any usernames lock the address.

Failures count within LOGIN_THROTTLE_WINDOW seconds of the first; the failure that reaches a
limit locks for a whole window from then on. While locked, every attempt is refused before the
password is checked, so a right guess during the lockout tells the attacker nothing. A right
password clears the pair's counter. The client's address comes from
``core.net.client_ip``, which believes a proxy's header only from TRUSTED_PROXIES.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.core.exceptions import PermissionDenied

from core import throttling
from core.net import client_ip

T = TypeVar("T")


class SignInLocked(PermissionDenied):
    """Too many failed password checks from this client: refused without checking the password.

    A ``PermissionDenied``, so ``django.contrib.auth.authenticate`` stops at once and returns None.
    """

    def __init__(self, seconds: int):
        super().__init__(wait_message(seconds))
        self.seconds = seconds


def _counters(request, username: str) -> list[tuple[throttling.Throttle, str]]:
    window = settings.LOGIN_THROTTLE_WINDOW
    ip = client_ip(request) or "unknown"
    pair = throttling.Throttle("sign-in:pair", throttling.Rate(settings.LOGIN_THROTTLE_FAILURES, window))
    address = throttling.Throttle("sign-in:ip", throttling.Rate(settings.LOGIN_THROTTLE_IP_FAILURES, window))
    return [(pair, f"{ip}\n{username.strip().casefold()}"), (address, ip)]


def seconds_locked(request, username: str) -> int:
    """Return how many seconds password checks stay refused for this client and username (0: not locked)."""
    now = time.time()
    counters = _counters(request, username)
    windows = throttling.windows(counters, now=now)
    return max(throttle.blocked_for(window, now) for (throttle, _ident), window in zip(counters, windows, strict=True))


def record_failure(request, username: str) -> None:
    """Count one failed password check; the counter that reaches its limit locks for a whole window."""
    now = time.time()
    for throttle, ident in _counters(request, username):
        if throttle.hit(ident, now=now).count >= throttle.rate.limit:
            throttle.restart(ident, count=throttle.rate.limit, now=now)


def clear_failures(request, username: str) -> None:
    """Forget the failures of this client and username after a right password."""
    throttle, ident = _counters(request, username)[0]
    throttle.reset(ident)


def check_password(request, username: str, check: Callable[[], T]) -> T:
    """Run one password ``check`` under the throttle and return its result (falsy: a wrong password).

    Raise ``SignInLocked`` instead, without running it, while the client is locked out.
    """
    seconds = seconds_locked(request, username)
    if seconds:
        raise SignInLocked(seconds)
    result = check()
    if result:
        clear_failures(request, username)
    else:
        record_failure(request, username)
    return result


def wait_message(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    unit = "minute" if minutes == 1 else "minutes"
    return f"Too many failed sign-in attempts. Wait {minutes} {unit} before trying again."
