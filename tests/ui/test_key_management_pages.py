"""Managing keys in the browser UI (issue 16): rotate with confirmation, rename and expiry, the list's
search, filter, sort and bulk revoke, leak notices, keys left without flows, the audit log's pages
and CSV, and a run-only key made from a flow's page. Every page keeps working without JavaScript."""

import csv
import datetime
import io
import json
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from apikeys import show_once
from apikeys.access import KeyAccess
from apikeys.models import ApiKey, ApiKeyEvent
from apikeys.services import InvalidApiKey, authenticate_api_key, create_api_key, report_leaked_key, revoke_api_key
from flows.models import Flow
from flows.services import delete_flow

pytestmark = pytest.mark.django_db

LIST = reverse("apikeys:list")
CREATE = reverse("apikeys:create")
BULK = reverse("apikeys:bulk_revoke")
RAW_KEY = re.compile(r"lfsk_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}")


def detail(api_key):
    return reverse("apikeys:detail", args=[api_key.pk])


def rows(body: str) -> list[str]:
    """The key ids of the list's rows, in order."""
    return re.findall(r'<tr class="key-row[^"]*" data-key-id="([^"]+)"', body)


@pytest.fixture
def flow(user):
    return Flow.objects.create(owner=user, name="Echo")


# --- Rotate: a confirmation first, 24 hours of grace by default, an expiry to set -------------------

def test_the_rotate_form_defaults_to_24_hours_and_asks_first(signed_in, user, make_key):
    api_key, _raw = make_key(user, name="ci")
    body = signed_in.get(detail(api_key)).content.decode()
    assert re.search(r'<option value="24" selected>In 24 hours</option>', body)
    assert 'data-confirm-with="rotate-key-dialog"' in body and 'id="rotate-key-dialog"' in body
    assert "Rotate secret…" in body


def test_rotating_without_confirmation_answers_a_page_saying_what_stops_and_changes_nothing(signed_in, user,
                                                                                             make_key):
    api_key, raw = make_key(user, name="ci")
    response = signed_in.post(reverse("apikeys:rotate", args=[api_key.pk]), {"grace_period_hours": "0"})
    body = response.content.decode()
    assert response.status_code == 200
    assert "The current secret stops working at once" in body and "every program that uses it" in body
    assert 'name="confirmed" value="on"' in body and 'name="grace_period_hours" value="0"' in body
    assert "csrfmiddlewaretoken" in body
    api_key.refresh_from_db()
    assert api_key.rotated_at is None
    assert authenticate_api_key(raw).pk == api_key.pk
    assert not RAW_KEY.search(body)


def test_confirmed_rotation_keeps_the_old_secret_a_day_and_sets_the_chosen_expiry(signed_in, user, make_key):
    api_key, old = make_key(user, name="ci")
    before = timezone.now()
    response = signed_in.post(reverse("apikeys:rotate", args=[api_key.pk]),
                              {"grace_period_hours": "24", "expires_in": "90", "confirmed": "on"})
    assert response.status_code == 302 and response["Location"] == detail(api_key)
    api_key.refresh_from_db()
    assert api_key.previous_valid_until - before == pytest.approx(datetime.timedelta(hours=24),
                                                                   abs=datetime.timedelta(minutes=1))
    assert api_key.expires_at - before == pytest.approx(datetime.timedelta(days=90), abs=datetime.timedelta(minutes=1))
    assert authenticate_api_key(old).pk == api_key.pk  # still works during the grace period
    kinds = list(api_key.events.values_list("kind", "data__field"))
    assert (ApiKeyEvent.Kind.ACCESS_CHANGED, "expires_at") in kinds and (ApiKeyEvent.Kind.ROTATED, None) in kinds
    shown = signed_in.get(detail(api_key)).content.decode()
    assert RAW_KEY.search(shown)


def test_rotation_keeping_the_expiry_changes_only_the_secret(signed_in, user, make_key):
    expires = timezone.now() + datetime.timedelta(days=3)
    api_key, _raw = make_key(user, expires_at=expires)
    signed_in.post(reverse("apikeys:rotate", args=[api_key.pk]),
                   {"grace_period_hours": "0", "expires_in": "keep", "confirmed": "on"})
    api_key.refresh_from_db()
    assert api_key.expires_at == expires and api_key.rotated_at is not None
    assert not api_key.events.filter(data__field="expires_at").exists()


# --- Name and expiry ---------------------------------------------------------------------------------

def test_renaming_a_key_and_changing_its_expiry_is_saved_and_the_expiry_audited(signed_in, user, make_key):
    api_key, raw = make_key(user, name="old name")
    response = signed_in.post(reverse("apikeys:settings", args=[api_key.pk]), {"name": "new name", "expires_in": "7"},
                              follow=True)
    api_key.refresh_from_db()
    assert api_key.name == "new name"
    assert api_key.expires_at - timezone.now() == pytest.approx(datetime.timedelta(days=7),
                                                                 abs=datetime.timedelta(minutes=1))
    assert "Saved." in response.content.decode()
    event = api_key.events.get(kind=ApiKeyEvent.Kind.ACCESS_CHANGED)
    assert event.data["field"] == "expires_at" and event.actor == ApiKeyEvent.Actor.OWNER
    assert authenticate_api_key(raw).pk == api_key.pk


def test_choosing_never_warns(signed_in, user, make_key):
    api_key, _raw = make_key(user, expires_at=timezone.now() + datetime.timedelta(days=1))
    response = signed_in.post(reverse("apikeys:settings", args=[api_key.pk]), {"name": "", "expires_in": "never"},
                              follow=True)
    api_key.refresh_from_db()
    assert api_key.expires_at is None
    assert "never expires keeps working until you revoke it" in response.content.decode()


def test_a_revoked_key_can_be_renamed_but_its_expiry_stays(signed_in, user, make_key):
    api_key, _raw = make_key(user, name="gone")
    revoke_api_key(api_key)
    response = signed_in.post(reverse("apikeys:settings", args=[api_key.pk]),
                              {"name": "gone for good", "expires_in": "30"}, follow=True)
    api_key.refresh_from_db()
    assert api_key.name == "gone"
    assert api_key.expires_at is None and api_key.is_revoked
    assert "This key is revoked" in response.content.decode()
    signed_in.post(reverse("apikeys:settings", args=[api_key.pk]), {"name": "gone for good", "expires_in": "keep"})
    api_key.refresh_from_db()
    assert api_key.name == "gone for good" and api_key.is_revoked


def test_a_bad_name_is_a_form_error_on_the_key_page(signed_in, user, make_key):
    api_key, _raw = make_key(user, name="ok")
    response = signed_in.post(reverse("apikeys:settings", args=[api_key.pk]), {"name": "x" * 101, "expires_in": "keep"})
    assert response.status_code == 400
    assert "Keep the name to 100 characters or fewer" in response.content.decode()


@pytest.mark.parametrize("view", ["settings", "rotate", "acknowledge_leak"])
def test_another_users_key_is_a_404_for_every_change(signed_in, other_user, make_key, view):
    theirs, _raw = make_key(other_user, name="theirs")
    response = signed_in.post(reverse(f"apikeys:{view}", args=[theirs.pk]),
                              {"name": "mine now", "expires_in": "never", "grace_period_hours": "0", "confirmed": "on"})
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.name == "theirs" and theirs.rotated_at is None


def test_new_keys_default_to_30_days_and_never_warns(signed_in):
    body = signed_in.get(CREATE).content.decode()
    assert re.search(r'<option value="30" selected>30 days</option>', body)
    assert "never-expires-warning" in body
    response = signed_in.post(CREATE, {"name": "forever", "expires_in": ""}, follow=True)
    assert "never expires keeps working until you revoke it" in response.content.decode()


# --- The list: layout, search, filter, sort, hide revoked, bulk revoke ----------------------------------

def test_each_row_links_its_name_and_offers_manage_and_revoke(signed_in, user, make_key):
    api_key, _raw = make_key(user, name="deploy")
    body = signed_in.get(LIST).content.decode()
    assert f'<a class="key-link" href="{detail(api_key)}">' in body
    assert 'aria-label="Manage key deploy">Manage</a>' in body
    assert f'href="{reverse("apikeys:revoke", args=[api_key.pk])}"' in body and "<span>Revoke</span>" in body
    assert ">Delete<" not in body and "Delete key" not in body


def test_search_matches_the_name_or_the_public_key_id(signed_in, user, make_key):
    laptop, _ = make_key(user, name="Laptop")
    server, _ = make_key(user, name="build server")
    assert rows(signed_in.get(LIST, {"q": "lap"}).content.decode()) == [str(laptop.pk)]
    assert rows(signed_in.get(LIST, {"q": f"lfsk_{server.lookup_id}"}).content.decode()) == [str(server.pk)]
    assert "No keys match" in signed_in.get(LIST, {"q": "nothing like it"}).content.decode()


def test_a_whole_key_pasted_into_the_search_leaves_the_address_at_once(signed_in, user, make_key):
    api_key, raw = make_key(user, name="pasted")
    response = signed_in.get(LIST, {"q": f" {raw} ", "state": "active"})
    assert response.status_code == 302 and raw not in response["Location"]
    assert f"q=+lfsk_{api_key.lookup_id}+" in response["Location"] and "state=active" in response["Location"]
    assert rows(signed_in.get(response["Location"]).content.decode()) == [str(api_key.pk)]


def test_filters_by_state_and_hides_revoked(signed_in, user, make_key, flow):
    active, _ = make_key(user, name="active")
    revoked, _ = make_key(user, name="revoked")
    revoke_api_key(revoked)
    expired, _ = make_key(user, name="expired")
    ApiKey.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - datetime.timedelta(days=1))
    orphan, _ = make_key(user, name="orphan", access=KeyAccess(all_flows=False, flow_ids=(str(flow.pk),)))
    delete_flow(flow)

    def shown(**query):
        return set(rows(signed_in.get(LIST, query).content.decode()))

    assert shown() == {str(key.pk) for key in (active, revoked, expired, orphan)}
    assert shown(state="active") == {str(active.pk), str(orphan.pk)}
    assert shown(state="attention") == {str(orphan.pk)}
    assert shown(state="expired") == {str(expired.pk)}
    assert shown(state="revoked") == {str(revoked.pk)}
    assert shown(hide_revoked="on") == {str(key.pk) for key in (active, expired, orphan)}
    assert shown(state="bogus") == shown()  # an unknown choice is the default, never an error


def test_sorts_by_name_and_by_use(signed_in, user, make_key):
    zed, _ = make_key(user, name="zed")
    alpha, raw = make_key(user, name="alpha")
    authenticate_api_key(raw)
    assert rows(signed_in.get(LIST, {"sort": "name"}).content.decode()) == [str(alpha.pk), str(zed.pk)]
    assert rows(signed_in.get(LIST, {"sort": "-total_uses"}).content.decode())[0] == str(alpha.pk)
    assert rows(signed_in.get(LIST).content.decode()) == [str(alpha.pk), str(zed.pk)]  # newest first


def test_the_list_pages_by_50(signed_in, user, make_key):
    for number in range(53):
        make_key(user, name=f"key {number}")
    first = signed_in.get(LIST).content.decode()
    assert len(rows(first)) == 50 and "Page 1 of 2" in first
    second = signed_in.get(LIST, {"page": 2, "sort": "name"}).content.decode()
    assert len(rows(second)) == 3
    assert 'href="?sort=name&amp;page=1"' in second


def test_bulk_revoke_asks_first_then_revokes_only_the_owners_ticked_keys(signed_in, user, other_user, make_key):
    one, raw_one = make_key(user, name="one")
    two, _ = make_key(user, name="two")
    kept, raw_kept = make_key(user, name="kept")
    theirs, raw_theirs = make_key(other_user, name="theirs")
    page = signed_in.post(BULK, {"ids": [one.pk, two.pk]})
    body = page.content.decode()
    assert page.status_code == 200 and "Revoke 2 keys?" in body and one.masked in body and two.masked in body
    assert ApiKey.objects.filter(revoked_at__isnull=False).count() == 0

    response = signed_in.post(BULK, {"ids": [one.pk, two.pk], "confirmed": "on"}, follow=True)
    assert "2 keys revoked." in response.content.decode()
    assert set(ApiKey.objects.filter(revoked_at__isnull=False).values_list("pk", flat=True)) == {one.pk, two.pk}
    assert authenticate_api_key(raw_kept).pk == kept.pk
    with pytest.raises(InvalidApiKey):
        authenticate_api_key(raw_one)

    refused = signed_in.post(BULK, {"ids": [theirs.pk], "confirmed": "on"}, follow=True)
    assert "no longer there or already revoked" in refused.content.decode()
    assert authenticate_api_key(raw_theirs).pk == theirs.pk


def test_bulk_revoke_with_nothing_ticked_says_so(signed_in, user, make_key):
    make_key(user)
    response = signed_in.post(BULK, {"confirmed": "on"}, follow=True)
    assert "Tick the keys to revoke first." in response.content.decode()


def test_bulk_revoke_needs_the_csrf_token(client, user, make_key):
    client.handler.enforce_csrf_checks = True
    client.force_login(user)
    api_key, _ = make_key(user)
    assert client.post(BULK, {"ids": [api_key.pk], "confirmed": "on"}).status_code == 403
    api_key.refresh_from_db()
    assert api_key.is_usable


# --- Leak notices ----------------------------------------------------------------------------------

def test_a_leak_notice_stays_until_dismissed_and_the_key_stays_revoked(signed_in, user, make_key):
    api_key, raw = make_key(user, name="leaky")
    report_leaked_key(raw)
    assert "was reported leaked" in signed_in.get(LIST).content.decode()
    assert "was reported leaked" in signed_in.get(LIST).content.decode()
    response = signed_in.post(reverse("apikeys:acknowledge_leak", args=[api_key.pk]), {"next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == LIST
    body = signed_in.get(LIST).content.decode()
    assert "was reported leaked" not in body and "Reported leaked" in body  # the badge stays
    api_key.refresh_from_db()
    assert api_key.is_reported_leaked and api_key.leak_acknowledged_at is not None


# --- Keys left without flows ------------------------------------------------------------------------

def test_a_key_whose_flows_were_all_deleted_is_marked_no_flows(signed_in, user, make_key, flow):
    api_key, _ = make_key(user, name="only echo", access=KeyAccess(all_flows=False, flow_ids=(str(flow.pk),)))
    delete_flow(flow)
    row = signed_in.get(LIST).content.decode().split(f'data-key-id="{api_key.pk}"')[1].split("</tr>")[0]
    assert "badge-no-flows" in row and "No flows" in row
    page = signed_in.get(detail(api_key)).content.decode()
    assert "This key can use no flow" in page


def test_the_flow_delete_dialog_and_page_name_the_keys_left_without_flows(signed_in, user, make_key, flow):
    other_flow = Flow.objects.create(owner=user, name="Other")
    alone, _ = make_key(user, name="echo only", access=KeyAccess(all_flows=False, flow_ids=(str(flow.pk),)))
    make_key(user, name="echo and other",
             access=KeyAccess(all_flows=False, flow_ids=(str(flow.pk), str(other_flow.pk))))
    make_key(user, name="everything")
    gone, _ = make_key(user, name="revoked echo", access=KeyAccess(all_flows=False, flow_ids=(str(flow.pk),)))
    revoke_api_key(gone)
    for url in (reverse("flows:detail", args=[flow.pk]), reverse("flows:delete", args=[flow.pk])):
        body = signed_in.get(url).content.decode()
        note = re.search(r'<div class="notice notice-warning dialog-note">.*?<p>(.*?)</p>', body, re.S).group(1)
        assert "“echo only”" in note and alone.masked in note
        assert "echo and other" not in note and "everything" not in note and "revoked echo" not in note
    other_body = signed_in.get(reverse("flows:detail", args=[other_flow.pk])).content.decode()
    assert "dialog-note" not in other_body


def test_the_flow_list_gives_each_delete_link_its_note(signed_in, user, make_key, flow):
    other_flow = Flow.objects.create(owner=user, name="Other")
    make_key(user, name="echo only", access=KeyAccess(all_flows=False, flow_ids=(str(flow.pk),)))
    make_key(user, name="both", access=KeyAccess(all_flows=False, flow_ids=(str(flow.pk), str(other_flow.pk))))
    body = signed_in.get(reverse("flows:list")).content.decode()
    links = dict(re.findall(r'href="/flows/([0-9a-f-]+)/delete/"[^>]*?data-fill-note="([^"]*)"', body, re.S))
    assert "“echo only”" in links[str(flow.pk)] and "both" not in links[str(flow.pk)]
    assert links[str(other_flow.pk)] == ""
    assert '<p data-fill="note"></p>' in body


# --- Audit log pages and CSV -------------------------------------------------------------------------

@pytest.fixture
def busy_key(user, make_key):
    api_key, _ = make_key(user, name="busy")
    start = timezone.now() - datetime.timedelta(days=2)
    ApiKeyEvent.objects.bulk_create([
        ApiKeyEvent(api_key=api_key, kind=ApiKeyEvent.Kind.AUTH_FAILED, lookup_id=api_key.lookup_id,
                    client_ip="203.0.113.9", data={"reason": "wrong_secret"},
                    created_at=start + datetime.timedelta(minutes=number))
        for number in range(150)])
    # A reason as stored by another version: the words are the stored text, which must not run in a spreadsheet.
    ApiKeyEvent.objects.filter(pk=api_key.events.filter(kind=ApiKeyEvent.Kind.AUTH_FAILED).order_by("created_at")[0].pk
                               ).update(data={"reason": '=HYPERLINK("http://evil.example")'})
    return api_key


def test_the_key_page_shows_100_events_and_links_the_older_ones(signed_in, busy_key):
    body = signed_in.get(detail(busy_key)).content.decode()
    assert body.count('<tr class="audit-') == 100
    assert f'href="{reverse("apikeys:events", args=[busy_key.pk])}?page=2"' in body
    second = signed_in.get(reverse("apikeys:events", args=[busy_key.pk]), {"page": 2}).content.decode()
    assert second.count('<tr class="audit-auth_failed') == 51  # the creation (newest) and 150 failures
    assert "Page 2 of 2" in second


def test_the_audit_log_downloads_as_csv_without_formulas(signed_in, busy_key):
    response = signed_in.get(reverse("apikeys:events_csv", args=[busy_key.pk]))
    assert response["Content-Type"].startswith("text/csv")
    assert f"api-key-{busy_key.lookup_id}-audit-log.csv" in response["Content-Disposition"]
    assert "no-store" in response["Cache-Control"]
    table = list(csv.reader(io.StringIO(response.content.decode())))
    assert table[0] == ["time_utc", "event", "by", "by_user", "client_ip", "lookup_id", "detail"]
    assert len(table) == 1 + 151
    assert table[1][1] == "Created" and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", table[1][0])
    assert table[-1][1] == "Failed authentication" and table[-1][4] == "203.0.113.9"
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in table for cell in row)
    assert table[-1][6] == '\'=HYPERLINK("http://evil.example")'
    assert table[-2][6] == "wrong secret"


def test_another_users_audit_log_is_a_404(signed_in, other_user, make_key):
    theirs, _ = make_key(other_user)
    for name in ("events", "events_csv", "requests"):
        assert signed_in.get(reverse(f"apikeys:{name}", args=[theirs.pk])).status_code == 404


# --- A key for one flow, from its page --------------------------------------------------------------

def test_the_flow_api_panel_offers_a_key_for_the_flow_and_the_api_docs(signed_in, flow):
    body = signed_in.get(reverse("flows:detail", args=[flow.pk])).content.decode()
    assert f'action="{reverse("apikeys:create_for_flow", args=[flow.pk])}"' in body
    assert "Create a key for this flow" in body
    assert f'href="{reverse("api-docs")}"' in body and "Interactive API docs" in body


def test_a_flow_key_is_run_only_limited_to_the_flow_and_shown_once_in_the_answer(signed_in, user, flow):
    response = signed_in.post(reverse("apikeys:create_for_flow", args=[flow.pk]), HTTP_ACCEPT="application/json")
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    answer = json.loads(response.content)
    api_key = ApiKey.objects.get(user=user)
    assert authenticate_api_key(answer["api_key"]).pk == api_key.pk
    assert answer["url"] == detail(api_key) and answer["name"] == "Echo (run only)"
    assert api_key.all_flows is False and api_key.flow_ids == [str(flow.pk)] and api_key.permissions == ["run"]
    assert api_key.expires_at - timezone.now() == pytest.approx(datetime.timedelta(days=30),
                                                                 abs=datetime.timedelta(minutes=1))
    assert answer["api_key"] not in signed_in.get(reverse("flows:detail", args=[flow.pk])).content.decode()


def test_without_javascript_a_flow_key_is_shown_once_on_its_page(signed_in, user, flow):
    response = signed_in.post(reverse("apikeys:create_for_flow", args=[flow.pk]))
    api_key = ApiKey.objects.get(user=user)
    assert response.status_code == 302 and response["Location"] == detail(api_key)
    assert not RAW_KEY.search(response["Location"])
    assert show_once.SESSION_KEY in signed_in.session
    assert RAW_KEY.search(signed_in.get(detail(api_key)).content.decode())
    assert not RAW_KEY.search(signed_in.get(detail(api_key)).content.decode())


def test_no_key_for_another_users_flow(signed_in, other_user):
    theirs = Flow.objects.create(owner=other_user, name="Theirs")
    response = signed_in.post(reverse("apikeys:create_for_flow", args=[theirs.pk]), HTTP_ACCEPT="application/json")
    assert response.status_code == 404
    assert not ApiKey.objects.exists()


def test_a_flow_key_needs_the_csrf_token(client, user, flow):
    client.handler.enforce_csrf_checks = True
    client.force_login(user)
    assert client.post(reverse("apikeys:create_for_flow", args=[flow.pk])).status_code == 403
    assert not ApiKey.objects.exists()


def test_new_pages_are_never_cached(signed_in, user):
    api_key, _ = create_api_key(user=user)
    for url in (reverse("apikeys:events", args=[api_key.pk]), reverse("apikeys:requests", args=[api_key.pk]),
                LIST + "?q=x"):
        assert "no-store" in signed_in.get(url)["Cache-Control"]
