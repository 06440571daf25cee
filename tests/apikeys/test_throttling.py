"""Failed key authentications are throttled per client IP; requests per key are limitable."""

import datetime
import time

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from apikeys import crypto
from apikeys.access import KeyAccess
from apikeys.audit import describe
from apikeys.models import ApiKeyEvent
from apikeys.throttling import FailedAuthenticationThrottle
from core.throttling import Rate, Throttle

pytestmark = pytest.mark.django_db

WHOAMI = "/api/v1/users/whoami"


def _bad_key(lookup_id="Q" * 12):
    return crypto.build_key(lookup_id, "s" * 32)


def test_failed_attempts_from_one_address_get_429_with_retry_after(api_client, settings):
    settings.API_KEY_FAILED_AUTH_RATE = "3/min"
    for _ in range(3):
        assert api_client.get(WHOAMI, HTTP_X_API_KEY=_bad_key()).status_code == 403
    response = api_client.get(WHOAMI, HTTP_X_API_KEY=_bad_key())
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60
    detail = response.json()["detail"]
    assert detail.startswith("Too many failed API key attempts from your address.") and "seconds" in detail


def test_while_throttled_even_the_right_key_is_refused_so_guessing_learns_nothing(api_client, user, make_key, settings):
    settings.API_KEY_FAILED_AUTH_RATE = "2/min"
    api_key, raw = make_key(user)
    for _ in range(2):
        api_client.get(WHOAMI, HTTP_X_API_KEY=_bad_key(api_key.lookup_id))
    assert api_client.get(WHOAMI, HTTP_X_API_KEY=raw).status_code == 429
    api_key.refresh_from_db()
    assert api_key.total_uses == 0


def test_other_addresses_and_good_keys_are_not_slowed_down(api_client, user, make_key, settings):
    settings.API_KEY_FAILED_AUTH_RATE = "2/min"
    _, raw = make_key(user)
    for _ in range(5):
        assert api_client.get(WHOAMI, HTTP_X_API_KEY=raw).status_code == 200
    for _ in range(2):
        api_client.get(WHOAMI, HTTP_X_API_KEY=_bad_key())
    assert api_client.get(WHOAMI, HTTP_X_API_KEY=raw, REMOTE_ADDR="192.0.2.10").status_code == 200
    assert api_client.get(WHOAMI, HTTP_X_API_KEY=raw).status_code == 429


def test_requests_without_a_key_are_not_counted_as_failures(api_client, settings):
    settings.API_KEY_FAILED_AUTH_RATE = "1/min"
    for _ in range(3):
        assert api_client.get(WHOAMI).status_code == 403
    assert api_client.get(WHOAMI, HTTP_X_API_KEY=_bad_key()).status_code == 403


def test_an_empty_rate_turns_the_failed_attempt_limit_off(api_client, settings):
    settings.API_KEY_FAILED_AUTH_RATE = ""
    for _ in range(30):
        assert api_client.get(WHOAMI, HTTP_X_API_KEY=_bad_key()).status_code == 403


def test_behind_a_trusted_proxy_the_forwarded_client_is_throttled_not_the_proxy(api_client, settings):
    settings.API_KEY_FAILED_AUTH_RATE = "2/min"
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    via_proxy = {"REMOTE_ADDR": "10.0.0.2"}
    for _ in range(2):
        api_client.get(WHOAMI, HTTP_X_API_KEY=_bad_key(), HTTP_X_FORWARDED_FOR="198.51.100.7", **via_proxy)
    blocked = api_client.get(WHOAMI, HTTP_X_API_KEY=_bad_key(), HTTP_X_FORWARDED_FOR="198.51.100.7", **via_proxy)
    other = api_client.get(WHOAMI, HTTP_X_API_KEY=_bad_key(), HTTP_X_FORWARDED_FOR="198.51.100.8", **via_proxy)
    assert (blocked.status_code, other.status_code) == (429, 403)
    assert set(ApiKeyEvent.objects.values_list("client_ip", flat=True)) == {"198.51.100.7", "198.51.100.8"}


def test_behind_a_proxy_on_a_unix_socket_each_client_has_its_own_count(api_client, user, make_key, settings):
    settings.API_KEY_FAILED_AUTH_RATE = "2/min"
    settings.TRUSTED_PROXIES = ["unix"]
    via_socket = {"REMOTE_ADDR": ""}  # what a server on a Unix socket passes on
    for _ in range(2):
        api_client.get(WHOAMI, HTTP_X_API_KEY=_bad_key(), HTTP_X_FORWARDED_FOR="198.51.100.7", **via_socket)
    blocked = api_client.get(WHOAMI, HTTP_X_API_KEY=_bad_key(), HTTP_X_FORWARDED_FOR="198.51.100.7", **via_socket)
    other = api_client.get(WHOAMI, HTTP_X_API_KEY=_bad_key(), HTTP_X_FORWARDED_FOR="198.51.100.8", **via_socket)
    assert (blocked.status_code, other.status_code) == (429, 403)
    assert set(ApiKeyEvent.objects.values_list("client_ip", flat=True)) == {"198.51.100.7", "198.51.100.8"}
    api_key, raw = make_key(user, access=KeyAccess(allowed_ips=("203.0.113.0/24",)))
    allowed = api_client.get(WHOAMI, HTTP_X_API_KEY=raw, HTTP_X_FORWARDED_FOR="203.0.113.5", **via_socket)
    elsewhere = api_client.get(WHOAMI, HTTP_X_API_KEY=raw, HTTP_X_FORWARDED_FOR="192.0.2.1", **via_socket)
    assert (allowed.status_code, elsewhere.status_code) == (200, 403)


def test_a_spoofed_forwarded_header_from_an_untrusted_peer_changes_nothing(api_client, settings):
    settings.API_KEY_FAILED_AUTH_RATE = "2/min"
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    for n in range(2):
        api_client.get(WHOAMI, HTTP_X_API_KEY=_bad_key(), HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
    response = api_client.get(WHOAMI, HTTP_X_API_KEY=_bad_key(), HTTP_X_FORWARDED_FOR="198.51.100.99")
    assert response.status_code == 429


def test_each_failed_attempt_is_logged_with_lookup_id_and_address_never_the_key(api_client, user, make_key):
    api_key, raw = make_key(user)
    wrong = _bad_key(api_key.lookup_id)
    unknown = _bad_key()
    for candidate in (wrong, unknown, "lfsk_not-even-close"):
        api_client.get(WHOAMI, HTTP_X_API_KEY=candidate)
    events = list(ApiKeyEvent.objects.filter(kind="auth_failed").order_by("id"))
    assert [(e.api_key_id, e.lookup_id, e.client_ip, e.data) for e in events] == [
        (api_key.pk, api_key.lookup_id, "127.0.0.1", {"reason": "wrong_secret"}),
        (None, "Q" * 12, "127.0.0.1", {"reason": "unknown_key"}),
        (None, "", "127.0.0.1", {"reason": "malformed_key"}),
    ]
    assert [describe(e) for e in events] == ["wrong secret", "unknown key", "malformed key"]
    dump = repr(list(ApiKeyEvent.objects.values_list()))
    for candidate in (raw, wrong, unknown, "not-even-close"):
        assert candidate not in dump


def test_using_an_expired_key_logs_the_failure_and_the_expiry_once(api_client, user, make_key):
    api_key, raw = make_key(user, expires_at=timezone.now() - datetime.timedelta(minutes=5))
    for _ in range(2):
        assert api_client.get(WHOAMI, HTTP_X_API_KEY=raw).status_code == 403
    kinds = sorted(api_key.events.values_list("kind", flat=True))
    assert kinds == ["auth_failed", "auth_failed", "created", "expired"]


def test_the_throttle_bounds_the_audit_lines_one_address_can_write(api_client, settings):
    settings.API_KEY_FAILED_AUTH_RATE = "5/min"
    for _ in range(20):
        api_client.get(WHOAMI, HTTP_X_API_KEY=_bad_key())
    assert ApiKeyEvent.objects.filter(kind="auth_failed").count() == 5


def _app_statements(captured):
    """The statements on the site's own tables (the cache's, and its savepoints, left out)."""
    return [q["sql"] for q in captured if "apikeys_" in q["sql"] or "users_" in q["sql"]]


def test_a_failed_attempt_costs_one_select_and_one_insert(api_client):
    with CaptureQueriesContext(connection) as captured:
        api_client.get(WHOAMI, HTTP_X_API_KEY=_bad_key())
    statements = _app_statements(captured)
    assert [sql.split()[0] for sql in statements] == ["SELECT", "INSERT"]


def test_a_good_key_request_costs_two_queries(api_client, user, make_key, django_assert_num_queries):
    _, raw = make_key(user)
    with django_assert_num_queries(2):  # SELECT key + user; UPDATE uses (the daily count rides on it)
        assert api_client.get(WHOAMI, HTTP_X_API_KEY=raw).status_code == 200


def test_a_good_key_request_reads_the_cache_once_and_writes_nothing_there(api_client, user, make_key, monkeypatch):
    _, raw = make_key(user)
    calls = []
    for name in ("get", "get_many", "add", "incr", "set", "delete"):
        real = getattr(cache, name)
        monkeypatch.setattr(cache, name, lambda *args, _name=name, _real=real, **kwargs: calls.append(_name) or _real(*args, **kwargs))
    assert api_client.get(WHOAMI, HTTP_X_API_KEY=raw).status_code == 200
    assert calls == ["get"]


def test_failures_verified_at_the_same_moment_past_the_limit_get_429_and_no_audit_line(api_client, settings, monkeypatch):
    """Two failures can both pass the check before either is counted; the atomic count settles it."""
    settings.API_KEY_FAILED_AUTH_RATE = "2/min"
    monkeypatch.setattr(FailedAuthenticationThrottle, "check", lambda self: None)  # as if all raced past it
    statuses = [api_client.get(WHOAMI, HTTP_X_API_KEY=_bad_key()).status_code for _ in range(4)]
    assert statuses == [403, 403, 429, 429]
    assert ApiKeyEvent.objects.filter(kind="auth_failed").count() == 2


def test_failed_attempts_are_counted_in_the_shared_cache(api_client, settings):
    settings.API_KEY_FAILED_AUTH_RATE = "5/min"
    for _ in range(3):
        api_client.get(WHOAMI, HTTP_X_API_KEY=_bad_key())
    window = Throttle("failed-api-key", Rate(5, 60)).window("127.0.0.1")
    assert window.count == 3 and 55 <= window.ends_at - time.time() <= 60


def test_per_key_limit_from_the_setting(user, make_key, settings):
    settings.API_KEY_RATE = "3/min"
    _, first = make_key(user)
    _, second = make_key(user)
    client = APIClient()
    assert [client.get(WHOAMI, HTTP_X_API_KEY=first).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert client.get(WHOAMI, HTTP_X_API_KEY=second).status_code == 200


def test_per_key_limit_answers_429_with_the_seconds_until_the_window_ends(user, make_key, settings):
    settings.API_KEY_RATE = "2/hour"
    _, raw = make_key(user)
    client = APIClient()
    for _ in range(2):
        client.get(WHOAMI, HTTP_X_API_KEY=raw)
    refused = client.get(WHOAMI, HTTP_X_API_KEY=raw)
    assert refused.status_code == 429 and 3590 <= int(refused["Retry-After"]) <= 3600
    assert refused.json()["detail"].startswith("Request was throttled.")


def test_a_keys_own_limit_wins_over_the_setting(user, make_key, settings):
    settings.API_KEY_RATE = "100/min"
    api_key, raw = make_key(user)
    api_key.rate_limit = "2/hour"
    api_key.save(update_fields=["rate_limit"])
    client = APIClient()
    statuses = [client.get(WHOAMI, HTTP_X_API_KEY=raw).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert int(client.get(WHOAMI, HTTP_X_API_KEY=raw)["Retry-After"]) > 60


def test_no_per_key_limit_by_default(user, make_key, settings):
    settings.API_KEY_RATE = ""
    _, raw = make_key(user)
    client = APIClient()
    assert {client.get(WHOAMI, HTTP_X_API_KEY=raw).status_code for _ in range(50)} == {200}


def test_sessions_are_not_counted_against_key_limits(user, settings):
    settings.API_KEY_RATE = "1/min"
    client = APIClient()
    client.force_login(user)
    assert {client.get(WHOAMI).status_code for _ in range(5)} == {200}
