"""Saving a key in the admin writes only what changed, audits expiry and rate limit, and can never
bring a revoked key back, even when the revocation lands while the save is under way."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apikeys import admin as key_admin
from apikeys.audit import describe
from apikeys.models import ApiKey, ApiKeyEvent
from apikeys.services import (
    InvalidApiKey,
    KeyNotActive,
    authenticate_api_key,
    change_key_settings,
    create_api_key,
    report_leaked_key,
    revoke_api_key,
)

pytestmark = pytest.mark.django_db

NO_EXPIRY = {"expires_at_0": "", "expires_at_1": ""}
FULL_ACCESS = {"access_scope": "all", "access_permissions": ["run", "read", "write"], "access_allowed_ips": ""}


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


def save(staff, api_key, **fields):
    data = {"name": api_key.name, "rate_limit": api_key.rate_limit, **NO_EXPIRY, **FULL_ACCESS, **fields}
    return staff.post(reverse("admin:apikeys_apikey_change", args=[api_key.pk]), data, follow=True)


def expiry_fields(moment: datetime.datetime) -> dict:
    local = timezone.localtime(moment)
    return {"expires_at_0": local.strftime("%Y-%m-%d"), "expires_at_1": local.strftime("%H:%M:%S")}


def access_changes(api_key):
    """``[(words, actor), ...]`` of the key's access changes, newest first."""
    return [(describe(event), event.actor) for event in api_key.events.filter(kind=ApiKeyEvent.Kind.ACCESS_CHANGED)]


@pytest.fixture
def leak_report_during_the_save(monkeypatch):
    """Land a leak report after the admin has read the key and validated the form, before it saves."""
    reports = []

    def arrange(raw_key):
        original = key_admin.ApiKeyAdmin.save_model

        def save_model(self, request, obj, form, change):
            assert obj.revoked_at is None  # what this request read
            reports.append(report_leaked_key(raw_key, client_ip="198.51.100.9"))
            return original(self, request, obj, form, change)

        monkeypatch.setattr(key_admin.ApiKeyAdmin, "save_model", save_model)
        return reports

    return arrange


@pytest.mark.parametrize("edit", [
    {"name": "renamed"},
    {"rate_limit": "10/min"},
    {},  # "Save" with nothing changed
])
def test_a_leak_report_landing_during_an_admin_save_stays_revoked(staff, user, leak_report_during_the_save, edit):
    api_key, raw = create_api_key(user=user, name="ci")
    reports = leak_report_during_the_save(raw)
    response = save(staff, api_key, **edit)
    assert response.status_code == 200 and reports == [True]
    api_key.refresh_from_db()
    assert api_key.is_revoked and api_key.revoked_by == ApiKey.RevokedBy.LEAK_REPORT
    with pytest.raises(InvalidApiKey):
        authenticate_api_key(raw)
    assert api_key.rate_limit == ""  # a change of what a revoked key may do is refused...
    if "rate_limit" in edit:
        assert "Expiry and rate limit unchanged: This key is revoked" in response.content.decode()
    assert api_key.name == edit.get("name", "ci")  # ...its label may still change


def test_an_admin_save_writes_only_the_columns_that_changed(staff, user):
    api_key, _ = create_api_key(user=user, name="ci")
    with CaptureQueriesContext(connection) as queries:
        save(staff, api_key, name="renamed")
    updates = [query["sql"] for query in queries if query["sql"].startswith("UPDATE") and "apikeys_apikey" in query["sql"]]
    assert len(updates) == 1, updates
    assert '"name"' in updates[0] and '"revoked_at"' not in updates[0] and '"digest"' not in updates[0]


def test_nothing_is_written_when_nothing_changed(staff, user):
    api_key, _ = create_api_key(user=user, name="ci")
    with CaptureQueriesContext(connection) as queries:
        save(staff, api_key)
    assert not [query for query in queries if query["sql"].startswith("UPDATE") and "apikeys_apikey" in query["sql"]]


def test_admin_changes_of_expiry_and_rate_limit_are_audited_as_the_administrator(staff, admin_user, user):
    api_key, _ = create_api_key(user=user, name="ci")
    expiry = (timezone.now() + datetime.timedelta(days=30)).replace(microsecond=0, second=0)
    response = save(staff, api_key, rate_limit="100/min", **expiry_fields(expiry))
    assert response.status_code == 200
    api_key.refresh_from_db()
    assert api_key.rate_limit == "100/min" and api_key.expires_at == expiry
    expected_expiry = f"Expiry: never → {expiry.astimezone(datetime.UTC):%Y-%m-%d %H:%M} UTC"
    assert sorted(access_changes(api_key)) == sorted([
        (expected_expiry, "admin"), ("Rate limit: the server's default → 100/min", "admin")])
    assert set(api_key.events.filter(kind=ApiKeyEvent.Kind.ACCESS_CHANGED).values_list("actor_user", flat=True)) == {
        admin_user.pk}
    save(staff, api_key, rate_limit="", **expiry_fields(expiry))
    assert ("Rate limit: 100/min → the server's default", "admin") in access_changes(api_key)
    assert len(access_changes(api_key)) == 3


@pytest.mark.parametrize("state", ["revoked", "expired"])
def test_a_revoked_or_expired_key_keeps_its_expiry_and_rate_limit(staff, user, state):
    api_key, raw = create_api_key(user=user, name="ci")
    if state == "revoked":
        revoke_api_key(api_key)
    else:
        ApiKey.objects.filter(pk=api_key.pk).update(expires_at=timezone.now() - datetime.timedelta(minutes=1))
    later = timezone.now() + datetime.timedelta(days=365)
    response = save(staff, api_key, rate_limit="5/min", **expiry_fields(later))
    assert f"This key is {state}: this can no longer change." in response.content.decode()
    fresh = ApiKey.objects.get(pk=api_key.pk)
    assert fresh.rate_limit == "" and fresh.expires_at != later.replace(microsecond=0)
    assert not access_changes(fresh)
    with pytest.raises(InvalidApiKey):
        authenticate_api_key(raw)


def test_the_service_refuses_to_revive_an_expired_key_and_never_touches_revocation(user):
    api_key, raw = create_api_key(user=user)
    ApiKey.objects.filter(pk=api_key.pk).update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    with pytest.raises(KeyNotActive):
        change_key_settings(api_key, expires_at=None)
    revoke_api_key(api_key)
    assert change_key_settings(api_key, name="still labelled") == []
    fresh = ApiKey.objects.get(pk=api_key.pk)
    assert fresh.is_revoked and fresh.name == "still labelled"


@pytest.mark.django_db(transaction=True)
def test_the_race_with_a_leak_report_on_another_connection(client, admin_user, user, monkeypatch):
    """The real thing: the report comes on its own thread and database connection. On PostgreSQL it
    commits while the admin's save is under way; SQLite makes it wait for the save (IMMEDIATE
    transactions). Either way the key ends revoked, and the save is all or nothing."""
    import threading

    from django.db import connections

    api_key, raw = create_api_key(user=user, name="ci")
    client.force_login(admin_user)
    original = key_admin.ApiKeyAdmin.save_model
    outcome = {}

    def report():
        try:
            outcome["revoked"] = report_leaked_key(raw, client_ip="198.51.100.9")
        finally:
            connections.close_all()

    reporter = threading.Thread(target=report)

    def save_model(self, request, obj, form, change):
        reporter.start()
        reporter.join(timeout=2)  # PostgreSQL: done by now; SQLite: waiting for this transaction
        return original(self, request, obj, form, change)

    monkeypatch.setattr(key_admin.ApiKeyAdmin, "save_model", save_model)
    response = save(client, api_key, name="renamed", rate_limit="10/min")
    reporter.join(timeout=30)
    assert response.status_code == 200 and outcome == {"revoked": True}
    fresh = ApiKey.objects.get(pk=api_key.pk)
    assert fresh.is_revoked and fresh.revoked_by == ApiKey.RevokedBy.LEAK_REPORT
    # Saved whole before the revocation (SQLite), or refused whole after it (PostgreSQL).
    assert (fresh.name, fresh.rate_limit) in {("renamed", "10/min"), ("ci", "")}
    with pytest.raises(InvalidApiKey):
        authenticate_api_key(raw)
