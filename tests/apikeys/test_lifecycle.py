"""The key lifecycle in the services: rotation, leak reports, expiry, audit log, daily usage."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apikeys import crypto
from apikeys.models import ApiKey, ApiKeyDailyUsage, ApiKeyEvent
from apikeys.services import (
    InvalidApiKey,
    KeyNotActive,
    audit_log,
    authenticate_api_key,
    create_api_key,
    daily_usage,
    record_expiry,
    report_leaked_key,
    revoke_api_key,
    rotate_api_key,
)

pytestmark = pytest.mark.django_db

DAY = datetime.timedelta(days=1)


def test_rotation_at_once_keeps_the_record_and_stops_the_old_secret(user):
    api_key, old = create_api_key(user=user, name="kept")
    authenticate_api_key(old)
    rotated, new = rotate_api_key(api_key)
    assert rotated.pk == api_key.pk and new != old
    with pytest.raises(InvalidApiKey):
        authenticate_api_key(old)
    assert authenticate_api_key(new).pk == api_key.pk
    api_key.refresh_from_db()
    assert api_key.total_uses == 2 and api_key.name == "kept" and api_key.previous_digest == ""


def test_the_old_secret_works_during_the_grace_period_and_not_after(user):
    api_key, old = create_api_key(user=user)
    _, new = rotate_api_key(api_key, grace=datetime.timedelta(hours=2))
    assert authenticate_api_key(old).pk == api_key.pk
    assert authenticate_api_key(new).pk == api_key.pk
    ApiKey.objects.filter(pk=api_key.pk).update(previous_valid_until=timezone.now() - datetime.timedelta(seconds=1))
    with pytest.raises(InvalidApiKey) as refused:
        authenticate_api_key(old)
    assert refused.value.reason == ApiKeyEvent.FailureReason.WRONG_SECRET
    assert authenticate_api_key(new).pk == api_key.pk


def test_a_second_rotation_ends_the_first_grace_period(user):
    api_key, first = create_api_key(user=user)
    _, second = rotate_api_key(api_key, grace=DAY)
    _, third = rotate_api_key(api_key, grace=DAY)
    with pytest.raises(InvalidApiKey):
        authenticate_api_key(first)
    assert authenticate_api_key(second) and authenticate_api_key(third)


def test_revoking_ends_the_grace_period_too(user):
    api_key, old = create_api_key(user=user)
    _, new = rotate_api_key(api_key, grace=DAY)
    revoke_api_key(api_key)
    for raw in (old, new):
        with pytest.raises(InvalidApiKey):
            authenticate_api_key(raw)


@pytest.mark.parametrize("grace", [datetime.timedelta(days=7, seconds=1), datetime.timedelta(seconds=-1)])
def test_rotation_refuses_a_grace_period_outside_0_to_7_days(user, grace):
    api_key, old = create_api_key(user=user)
    with pytest.raises(ValueError):
        rotate_api_key(api_key, grace=grace)
    assert authenticate_api_key(old)


def test_rotation_refuses_revoked_and_expired_keys(user):
    revoked, _ = create_api_key(user=user)
    revoke_api_key(revoked)
    expired, _ = create_api_key(user=user, expires_at=timezone.now() - DAY)
    for api_key in (revoked, expired):
        with pytest.raises(KeyNotActive):
            rotate_api_key(api_key)


def test_a_previous_secret_under_an_old_pepper_never_replaces_the_current_digest(user, settings):
    settings.API_KEY_PEPPERS = {1: "old-pepper"}
    api_key, old = create_api_key(user=user)
    settings.API_KEY_PEPPERS = {1: "old-pepper", 2: "new-pepper"}
    _, new = rotate_api_key(api_key, grace=DAY)
    authenticate_api_key(old)  # the previous secret, under pepper 1
    api_key.refresh_from_db()
    assert api_key.pepper_version == 2 and api_key.previous_pepper_version == 1
    assert api_key.digest == crypto.digest(new, "new-pepper")
    assert authenticate_api_key(new).pk == api_key.pk


def test_a_rotation_racing_a_request_with_the_old_secret_refuses_it_when_there_is_no_grace(user, before_counting_a_use):
    api_key, old = create_api_key(user=user)
    before_counting_a_use(lambda key: rotate_api_key(ApiKey.objects.get(pk=key.pk)))  # as another worker would
    with pytest.raises(InvalidApiKey):
        authenticate_api_key(old)
    api_key.refresh_from_db()
    assert api_key.total_uses == 0


def test_a_rotation_racing_a_request_with_the_old_secret_lets_it_through_in_a_grace_period(
    user, before_counting_a_use
):
    api_key, old = create_api_key(user=user)
    before_counting_a_use(lambda key: rotate_api_key(ApiKey.objects.get(pk=key.pk), grace=DAY))
    assert authenticate_api_key(old).pk == api_key.pk
    api_key.refresh_from_db()
    assert api_key.total_uses == 1


def test_raw_keys_appear_nowhere_in_the_database_after_create_and_rotate(user):
    api_key, first = create_api_key(user=user)
    _, second = rotate_api_key(api_key, grace=DAY)
    report_leaked_key(second)
    authenticate_api_key_quietly(first)
    rows = [*ApiKey.objects.values_list(), *ApiKeyEvent.objects.values_list()]
    dump = repr(rows)
    for raw in (first, second):
        assert raw not in dump and raw.split("_", 2)[2][:32] not in dump


def authenticate_api_key_quietly(raw):
    try:
        authenticate_api_key(raw)
    except InvalidApiKey:
        pass


def test_leak_report_revokes_and_marks_the_key(user):
    api_key, raw = create_api_key(user=user)
    assert report_leaked_key(raw, client_ip="203.0.113.9") is True
    api_key.refresh_from_db()
    assert api_key.is_reported_leaked and api_key.state == "reported leaked"
    assert report_leaked_key(raw) is False
    event = api_key.events.get(kind="revoked")
    assert (event.actor, event.client_ip) == ("leak_report", "203.0.113.9")


def test_leak_report_of_an_expired_key_still_marks_it(user):
    api_key, raw = create_api_key(user=user, expires_at=timezone.now() - DAY)
    assert report_leaked_key(raw) is True
    api_key.refresh_from_db()
    assert api_key.is_reported_leaked


def test_failed_attempts_carry_the_lookup_id_and_reason_for_the_audit_log(user):
    api_key, raw = create_api_key(user=user)
    cases = {
        "malformed_key": ("lfsk_bad", "", None),
        "unknown_key": (crypto.build_key("Q" * 12, "s" * 32), "Q" * 12, None),
        "wrong_secret": (crypto.build_key(api_key.lookup_id, "s" * 32), api_key.lookup_id, api_key.pk),
    }
    for reason, (candidate, lookup_id, key_pk) in cases.items():
        with pytest.raises(InvalidApiKey) as refused:
            authenticate_api_key(candidate)
        error = refused.value
        assert (error.reason, error.lookup_id, error.api_key_id) == (reason, lookup_id, key_pk)


def test_expiry_is_logged_once_dated_at_the_expiry(user):
    expires_at = timezone.now() - datetime.timedelta(hours=3)
    api_key, raw = create_api_key(user=user, expires_at=expires_at)
    record_expiry(api_key)
    record_expiry(api_key)
    audit_log(api_key)
    (event,) = api_key.events.filter(kind="expired")
    assert event.created_at == expires_at and event.actor == "system"


def test_a_key_not_yet_expired_or_revoked_before_its_expiry_logs_no_expiry(user):
    live, _ = create_api_key(user=user, expires_at=timezone.now() + DAY)
    revoked_first, _ = create_api_key(user=user)
    now = timezone.now()
    ApiKey.objects.filter(pk=revoked_first.pk).update(revoked_at=now - 2 * DAY, expires_at=now - DAY)
    revoked_first.refresh_from_db()
    for api_key in (live, revoked_first):
        audit_log(api_key)
        assert not api_key.events.filter(kind="expired").exists()


def test_the_audit_log_lists_the_whole_lifecycle_newest_first(user, other_user):
    api_key, raw = create_api_key(user=user)
    rotate_api_key(api_key, grace=DAY, actor=ApiKeyEvent.Actor.ADMIN, actor_user=other_user)
    revoke_api_key(api_key, revoked_by=ApiKey.RevokedBy.ADMIN, actor_user=other_user)
    kinds = [(e.kind, e.actor, e.actor_user) for e in audit_log(api_key)]
    assert kinds == [("revoked", "admin", other_user), ("rotated", "admin", other_user), ("created", "owner", user)]


def test_each_successful_use_counts_in_todays_usage_row(user):
    api_key, raw = create_api_key(user=user)
    for _ in range(3):
        authenticate_api_key(raw)
    today = timezone.now().astimezone(datetime.UTC).date()
    assert list(ApiKeyDailyUsage.objects.filter(api_key=api_key).values_list("day", "uses")) == [(today, 3)]
    with pytest.raises(InvalidApiKey):
        authenticate_api_key(crypto.build_key(api_key.lookup_id, "s" * 32))
    revoke_api_key(api_key)
    assert ApiKeyDailyUsage.objects.get(api_key=api_key).uses == 3


def test_a_good_key_costs_two_queries_with_the_daily_count_inside_them(user):
    api_key, raw = create_api_key(user=user)
    authenticate_api_key(raw)
    with CaptureQueriesContext(connection) as queries:
        authenticate_api_key(raw)
    assert len(queries) == 2
    assert ApiKeyDailyUsage.objects.get(api_key=api_key).uses == 2


def test_daily_usage_has_thirty_days_oldest_first_with_zeros(user):
    api_key, _ = create_api_key(user=user)
    today = datetime.date(2026, 3, 31)
    for day, uses in [(today, 5), (today - datetime.timedelta(days=29), 2), (today - datetime.timedelta(days=30), 99)]:
        ApiKeyDailyUsage.objects.create(api_key=api_key, day=day, uses=uses)
    usage = daily_usage(api_key, today=today)
    assert len(usage) == 30
    assert usage[0] == (today - datetime.timedelta(days=29), 2) and usage[-1] == (today, 5)
    assert sum(uses for _, uses in usage) == 7
