"""Rate limits around API keys, on DRF's throttles over Django's cache (Redis via CACHE_URL).

The cache must be shared by every app server in production, or each worker counts alone.
Rates are read from settings at each request, so they can be changed in tests and per key.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework import exceptions
from rest_framework.throttling import SimpleRateThrottle

from langflow_site.net import client_ip

from .models import ApiKey


class _ClientIpThrottle(SimpleRateThrottle):
    """Counts per client address, found by ``langflow_site.net.client_ip`` (TRUSTED_PROXIES aware)."""

    rate_setting = ""

    def get_rate(self):
        return getattr(settings, self.rate_setting) or None

    def get_ident(self, request):
        return client_ip(request) or "unknown"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class FailedAuthenticationThrottle(_ClientIpThrottle):
    """Failed key authentications per client IP (API_KEY_FAILED_AUTH_RATE).

    DRF runs throttles after authentication, where a failing key never arrives, so the
    authentication class uses this one itself: ``check()`` before verifying a key, and
    ``record_failure()`` after a refusal. While an address is over the limit every key it
    sends is refused unread, a right one too, so guessing learns nothing.
    """

    scope = "failed_api_key"
    rate_setting = "API_KEY_FAILED_AUTH_RATE"

    def check(self, request) -> None:
        """Raise Throttled (429 with Retry-After) when the address is over its limit."""
        if self.rate is None:
            return
        self.key = self.get_cache_key(request, None)
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        if len(self.history) >= self.num_requests:
            wait = self.wait()
            raise exceptions.Throttled(
                wait=wait, detail="Too many failed API key attempts from your address."
            )

    def record_failure(self) -> None:
        """Count one failure; call after ``check()`` on the same request."""
        if self.rate is not None:
            self.throttle_success()  # DRF's name for "append this request to the window"


class LeakReportThrottle(_ClientIpThrottle):
    """Leaked-key reports per client IP (API_KEY_LEAK_REPORT_RATE): the route needs no sign-in."""

    scope = "api_key_leak_report"
    rate_setting = "API_KEY_LEAK_REPORT_RATE"


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Requests per API key: the key's own ``rate_limit``, else API_KEY_RATE (empty: no limit).

    Session requests are not counted here.
    """

    scope = "api_key"

    def __init__(self):
        self.rate = None  # chosen per request, from the key

    def allow_request(self, request, view):
        api_key = request.auth if isinstance(request.auth, ApiKey) else None
        if api_key is None:
            return True
        self.rate = api_key.rate_limit or settings.API_KEY_RATE or None
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}
