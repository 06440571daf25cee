"""AUDIT_RETENTION_DAYS: `manage.py pruneauditlog` deletes audit events and daily-usage rows older than that."""

import datetime
import os
import subprocess
import sys
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from apikeys import audit, services
from apikeys.models import ApiKeyDailyUsage, ApiKeyEvent

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2026, 6, 15, 12, 0, tzinfo=datetime.UTC)


def days_ago(days: float) -> datetime.datetime:
    return NOW - datetime.timedelta(days=days)


@pytest.fixture
def history(user, make_key, monkeypatch):
    """A key with events and usage rows 400, 31, 29 and 0 days old, and an unknown key's refusals."""
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    api_key, _raw = make_key(user)
    ApiKeyEvent.objects.all().delete()
    for age in (400, 31, 29, 0):
        audit.record(ApiKeyEvent.Kind.AUTH_FAILED, api_key=api_key, client_ip="203.0.113.9",
                     data=audit.failed("wrong_secret"), created_at=days_ago(age))
        audit.record(ApiKeyEvent.Kind.AUTH_FAILED, lookup_id="Q" * 12, data=audit.failed("unknown_key"),
                     created_at=days_ago(age))
        ApiKeyDailyUsage.objects.create(api_key=api_key, day=days_ago(age).date(), uses=age + 1)
    return api_key


def ages_left() -> tuple[list, list]:
    events = sorted({(NOW - moment).days for moment in ApiKeyEvent.objects.values_list("created_at", flat=True)})
    usage = sorted((NOW.date() - day).days for day in ApiKeyDailyUsage.objects.values_list("day", flat=True))
    return events, usage


def test_the_command_deletes_what_is_older_than_the_setting_and_keeps_the_rest(history, settings):
    settings.AUDIT_RETENTION_DAYS = 30
    out = StringIO()
    call_command("pruneauditlog", stdout=out)
    assert ages_left() == ([0, 29], [0, 29])
    assert out.getvalue().strip().splitlines()[0] == (
        "Deleted 4 audit event(s) and 2 daily usage row(s) older than 30 days (before 2026-05-16 12:00 UTC).")
    call_command("pruneauditlog", stdout=out)  # nothing left to delete: no error
    assert ages_left() == ([0, 29], [0, 29])


def test_the_default_keeps_a_year_and_days_overrides_it(history):
    assert django_settings.AUDIT_RETENTION_DAYS == 365
    call_command("pruneauditlog", stdout=StringIO())
    assert ages_left() == ([0, 29, 31], [0, 29, 31])
    call_command("pruneauditlog", "--days", "1", stdout=StringIO())
    assert ages_left() == ([0], [0])


def test_it_deletes_in_batches_until_nothing_old_is_left(history):
    assert services.prune_audit_log(days=30, batch=3) == (4, 2)
    assert ages_left() == ([0, 29], [0, 29])


@pytest.mark.parametrize("days", ["0", "-5"])
def test_keeping_less_than_a_day_is_refused(history, days):
    with pytest.raises(CommandError, match="at least 1"):
        call_command("pruneauditlog", "--days", days)
    assert ages_left() == ([0, 29, 31, 400], [0, 29, 31, 400])


def test_a_setting_below_one_day_stops_the_server_at_start(tmp_path):
    environment = {**os.environ, "AUDIT_RETENTION_DAYS": "0", "DATA_DIR": str(tmp_path),
                   "DJANGO_SETTINGS_MODULE": "langflow_site.settings"}
    environment.pop("DATABASE_URL", None)
    started = subprocess.run([sys.executable, "manage.py", "check"], env=environment,
                             capture_output=True, text=True, cwd=django_settings.BASE_DIR, timeout=60)
    assert started.returncode != 0 and "AUDIT_RETENTION_DAYS must be at least 1" in started.stderr
