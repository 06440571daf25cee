"""The lifecycle in the browser UI: expiry choice, rotation shown once, leaked state, the key's page."""

import datetime
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from apikeys import crypto
from apikeys.models import ApiKey, ApiKeyDailyUsage
from apikeys.services import InvalidApiKey, authenticate_api_key, report_leaked_key, revoke_api_key

pytestmark = pytest.mark.django_db

LIST = reverse("apikeys:list")
CREATE = reverse("apikeys:create")


@pytest.fixture
def browser(client, user):
    client.force_login(user)
    return client


def _detail(api_key):
    return reverse("apikeys:detail", args=[api_key.pk])


def _rotate(api_key):
    return reverse("apikeys:rotate", args=[api_key.pk])


def test_the_create_dialog_offers_never_7_30_90_days_and_a_year(browser):
    body = browser.get(CREATE).content.decode()
    select = re.search(r'<select name="expires_in".*?</select>', body, re.S).group(0)
    options = re.findall(r'<option value="(\d*)"[^>]*>([^<]+)</option>', select)
    assert options == [("", "Never"), ("7", "7 days"), ("30", "30 days"), ("90", "90 days"), ("365", "1 year")]


@pytest.mark.parametrize("choice, days", [("", None), ("7", 7), ("30", 30), ("90", 90), ("365", 365)])
def test_a_key_created_in_the_ui_expires_as_chosen(browser, choice, days):
    before = timezone.now()
    response = browser.post(CREATE, {"name": "chosen", "expires_in": choice})
    assert response.status_code == 302
    api_key = ApiKey.objects.get()
    if days is None:
        assert api_key.expires_at is None
    else:
        expected = before + datetime.timedelta(days=days)
        assert expected <= api_key.expires_at <= timezone.now() + datetime.timedelta(days=days)


@pytest.mark.parametrize("choice", ["1", "-7", "forever", "3650"])
def test_an_expiry_outside_the_choices_is_a_form_error(browser, choice):
    response = browser.post(CREATE, {"name": "x", "expires_in": choice})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert ApiKey.objects.count() == 0


def test_expired_keys_are_shown_as_expired(browser, user, make_key):
    make_key(user, name="old", expires_at=timezone.now() - datetime.timedelta(days=1))
    body = browser.get(LIST).content.decode()
    assert "badge-expired" in body and "Expired" in body


def test_the_list_links_each_key_to_its_page(browser, user, make_key):
    api_key, _ = make_key(user, name="linked")
    assert f'href="{_detail(api_key)}"' in browser.get(LIST).content.decode()


def test_the_key_page_shows_facts_chart_and_audit_log_but_no_secret(browser, user, make_key, client):
    api_key, raw = make_key(user, name="mine")
    authenticate_api_key(raw)
    response = browser.get(_detail(api_key))
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    body = response.content.decode()
    assert "mine" in body and api_key.masked in body
    assert raw not in body and raw.split("_", 2)[2] not in body and api_key.digest not in body
    assert body.count('<rect class="usage-bar') == 30
    assert "1 request in the last 30 days" in body
    assert "Created" in body and "audit-created" in body


def test_the_chart_scales_bars_to_the_busiest_day(browser, user, make_key):
    api_key, _ = make_key(user)
    today = timezone.now().astimezone(datetime.UTC).date()
    ApiKeyDailyUsage.objects.create(api_key=api_key, day=today, uses=40)
    ApiKeyDailyUsage.objects.create(api_key=api_key, day=today - datetime.timedelta(days=3), uses=10)
    ApiKeyDailyUsage.objects.create(api_key=api_key, day=today - datetime.timedelta(days=31), uses=999)
    body = browser.get(_detail(api_key)).content.decode()
    heights = {title: float(height) for height, title in
               re.findall(r'<rect class="usage-bar[^"]*"[^>]*height="([\d.]+)"><title>([^<]+)</title>', body)}
    assert len(heights) == 30
    assert heights[f"{today:%b} {today.day}: 40 requests"] == 4 * heights[
        f"{today - datetime.timedelta(days=3):%b} {(today - datetime.timedelta(days=3)).day}: 10 requests"]
    assert sum(1 for h in heights.values() if h == 0) == 28
    assert "50 requests in the last 30 days; at most 40" in body


def test_the_key_page_has_no_inline_script_or_style(browser, user, make_key):
    api_key, _ = make_key(user)
    body = browser.get(_detail(api_key)).content.decode()
    assert "<script>" not in body and " style=" not in body and "onclick" not in body


def test_another_users_key_page_is_a_404_like_a_missing_one(browser, other_user, make_key):
    theirs, raw = make_key(other_user)
    assert browser.get(_detail(theirs)).status_code == 404
    assert browser.post(_rotate(theirs), {"grace_period_hours": "0"}).status_code == 404
    assert authenticate_api_key(raw).pk == theirs.pk


def test_the_key_page_needs_a_sign_in(client, user, make_key):
    api_key, _ = make_key(user)
    response = client.get(_detail(api_key))
    assert response.status_code == 302 and "login" in response["Location"]


def test_rotating_in_the_ui_shows_the_new_secret_once_on_the_key_page(browser, user, make_key):
    api_key, old = make_key(user, name="rotated")
    response = browser.post(_rotate(api_key), {"grace_period_hours": "0", "confirmed": "on"})
    assert response.status_code == 302 and response["Location"] == _detail(api_key)
    shown = browser.get(_detail(api_key))
    assert "no-store" in shown["Cache-Control"]
    new = re.search(r'id="new-key-value"[^>]*value="([^"]+)"', shown.content.decode()).group(1)
    assert new.startswith(f"lfsk_{api_key.lookup_id}_") and new != old
    assert authenticate_api_key(new).pk == api_key.pk
    with pytest.raises(InvalidApiKey):
        authenticate_api_key(old)
    again = browser.get(_detail(api_key)).content.decode()
    assert new not in again and "new-key-value" not in again
    assert "Rotated" in again and "previous secret stopped at once" in again


def test_rotating_with_a_grace_period_says_until_when_the_old_secret_works(browser, user, make_key):
    api_key, old = make_key(user)
    browser.post(_rotate(api_key), {"grace_period_hours": "24", "confirmed": "on"})
    body = browser.get(_detail(api_key)).content.decode()
    assert "The previous secret still works until" in body
    assert authenticate_api_key(old).pk == api_key.pk


@pytest.mark.parametrize("grace", ["", "2", "169", "-1", "soon"])
def test_rotating_refuses_a_grace_period_outside_the_choices(browser, user, make_key, grace):
    api_key, old = make_key(user)
    response = browser.post(_rotate(api_key), {"grace_period_hours": grace, "confirmed": "on"})
    assert response.status_code == 400 and "field-errors" in response.content.decode()
    api_key.refresh_from_db()
    assert api_key.rotated_at is None


def test_rotating_needs_post_and_csrf(user, make_key):
    from django.test import Client

    api_key, _ = make_key(user)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.get(_rotate(api_key)).status_code == 405
    assert client.post(_rotate(api_key), {"grace_period_hours": "0"}).status_code == 403
    api_key.refresh_from_db()
    assert api_key.rotated_at is None


def test_a_revoked_key_offers_no_rotation_and_refuses_one(browser, user, make_key):
    api_key, _ = make_key(user)
    revoke_api_key(api_key)
    assert _rotate(api_key) not in browser.get(_detail(api_key)).content.decode()
    response = browser.post(_rotate(api_key), {"grace_period_hours": "0", "confirmed": "on"}, follow=True)
    assert "revoked" in response.content.decode()
    api_key.refresh_from_db()
    assert api_key.rotated_at is None


def test_the_owner_sees_a_key_reported_leaked_on_the_list_and_its_page(browser, user, make_key):
    api_key, raw = make_key(user, name="pasted somewhere")
    report_leaked_key(raw, client_ip="198.51.100.23")
    listing = browser.get(LIST).content.decode()
    assert "was reported leaked" in listing and "badge-reported-leaked" in listing and api_key.masked in listing
    page = browser.get(_detail(api_key)).content.decode()
    assert "was reported leaked" in page and "Leak report" in page and "198.51.100.23" in page


def test_failed_attempts_on_the_key_show_in_its_audit_log_without_the_key(browser, user, make_key, api_client):
    api_key, raw = make_key(user)
    wrong = crypto.build_key(api_key.lookup_id, "s" * 32)
    api_client.get("/api/v1/users/whoami", HTTP_X_API_KEY=wrong, REMOTE_ADDR="203.0.113.77")
    body = browser.get(_detail(api_key)).content.decode()
    assert "Failed authentication" in body and "203.0.113.77" in body and "wrong secret" in body
    assert wrong not in body and raw not in body


def test_an_expired_key_page_logs_and_shows_the_expiry(browser, user, make_key):
    api_key, _ = make_key(user, expires_at=timezone.now() - datetime.timedelta(hours=1))
    body = browser.get(_detail(api_key)).content.decode()
    assert "audit-expired" in body and "Expired" in body
    assert api_key.events.filter(kind="expired").count() == 1
