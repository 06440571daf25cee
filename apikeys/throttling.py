"""Rate limits around API keys, counted by ``core.throttling`` (atomic, shared by every worker).

Three limits, each a DRF rate ("20/min") read from settings at each request, so tests and
per-key rates can change it:

* failed key authentications per client address (API_KEY_FAILED_AUTH_RATE), used by
  ``apikeys.authentication`` itself, since DRF runs its throttles after authentication;
* leak reports per client address (API_KEY_LEAK_REPORT_RATE), a DRF throttle on the route;
* requests per key (the key's own ``rate_limit``, else API_KEY_RATE; none by default), a DRF
  throttle on every API view. Sessions are not counted.

Each answers 429 with Retry-After (the seconds until its window ends).
"""

from __future__ import annotations

import time

from django.conf import settings
from rest_framework import exceptions
from rest_framework.throttling import BaseThrottle

from core.net import client_ip
from core.throttling import Rate, Throttle

from .models import ApiKey

FAILED_AUTH_MESSAGE = "Too many failed API key attempts from your address."


class FailedAuthenticationThrottle:
    """Failed key authentications from one client address, API_KEY_FAILED_AUTH_RATE per window.

    ``check()`` before a key is verified (one cache read: the only cost a valid key pays), and
    ``record_failure()`` after a refusal. While the address is at its limit every key it sends
    is refused unread, a right one too, so guessing learns nothing. Two failures verified at the
    same moment can both pass ``check()``; the count settles it: a failure counted past the
    limit is answered 429 too, and not written to the audit log.
    """

    def __init__(self, address: str | None):
        rate = Rate.parse(settings.API_KEY_FAILED_AUTH_RATE)
        self.throttle = Throttle("failed-api-key", rate) if rate else None
        self.ident = address or "unknown"

    def check(self) -> None:
        """Raise Throttled (429 with Retry-After) when the address is at its limit."""
        if self.throttle is not None:
            self._refuse_for(self.throttle.seconds_blocked(self.ident))

    def record_failure(self) -> None:
        """Count one failure; raise Throttled if it went past the limit."""
        if self.throttle is not None:
            now = time.time()
            window = self.throttle.hit(self.ident, now=now)
            if window.count > self.throttle.rate.limit:
                self._refuse_for(window.seconds_left(now))

    @staticmethod
    def _refuse_for(seconds: int) -> None:
        if seconds:
            raise exceptions.Throttled(wait=seconds, detail=FAILED_AUTH_MESSAGE)


class _CountingThrottle(BaseThrottle):
    """A DRF throttle that counts each request it sees and admits ``limit`` per window."""

    scope = ""

    def __init__(self):
        self.seconds = None

    def rate_and_ident(self, request) -> tuple[Rate | None, str]:
        raise NotImplementedError

    def allow_request(self, request, view):
        rate, ident = self.rate_and_ident(request)
        if rate is None:
            return True
        now = time.time()
        window = Throttle(self.scope, rate).hit(ident, now=now)
        if window.count <= rate.limit:
            return True
        self.seconds = window.seconds_left(now)
        return False

    def wait(self):
        return self.seconds


class LeakReportThrottle(_CountingThrottle):
    """Leaked-key reports per client address (API_KEY_LEAK_REPORT_RATE): the route needs no sign-in."""

    scope = "api-key-leak-report"

    def rate_and_ident(self, request):
        return Rate.parse(settings.API_KEY_LEAK_REPORT_RATE), client_ip(request) or "unknown"


class ApiKeyRateThrottle(_CountingThrottle):
    """Requests per API key: the key's own ``rate_limit``, else API_KEY_RATE (empty: no limit, no cache access)."""

    scope = "api-key"

    def rate_and_ident(self, request):
        api_key = request.auth if isinstance(request.auth, ApiKey) else None
        if api_key is None:
            return None, ""
        return Rate.parse(api_key.rate_limit or settings.API_KEY_RATE), str(api_key.pk)
