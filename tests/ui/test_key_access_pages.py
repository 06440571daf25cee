"""A key's access in the browser UI: the create dialog, the list at a glance, and the key's page."""

import re

import pytest
from django.urls import reverse

from apikeys.access import KeyAccess
from apikeys.models import ApiKey, ApiKeyEvent
from apikeys.services import create_api_key, revoke_api_key
from flows.models import Flow
from flows.services import delete_flow

pytestmark = pytest.mark.django_db

LIST = reverse("apikeys:list")
CREATE = reverse("apikeys:create")


@pytest.fixture
def flows(user):
    return [Flow.objects.create(owner=user, name=name) for name in ("Echo", "Summary", "Translate")]


def access_url(api_key) -> str:
    return reverse("apikeys:access", args=[api_key.pk])


def detail_url(api_key) -> str:
    return reverse("apikeys:detail", args=[api_key.pk])


def errors_of(body: str, field: str) -> list[str]:
    block = re.search(rf'<ul class="field-errors" id="id_{field}_error">(.*?)</ul>', body, re.S)
    return re.findall(r"<li>(.*?)</li>", block.group(1)) if block else []


def test_the_create_dialog_offers_the_owners_flows_permissions_and_allowed_ips(signed_in, other_user, flows):
    Flow.objects.create(owner=other_user, name="Bobs private flow")
    body = signed_in.get(CREATE).content.decode()
    for flow in flows:
        assert f'value="{flow.pk}"' in body and flow.name in body
    assert "Bobs private flow" not in body
    assert re.search(r'<input type="radio" name="scope" value="all"[^>]*checked', body)
    for permission in ("run", "read", "write"):
        assert re.search(rf'<input type="checkbox" name="permissions" value="{permission}"[^>]*checked', body)
    assert '<textarea name="allowed_ips"' in body
    assert "<legend>Flows</legend>" in body and "<legend>Permissions</legend>" in body


def test_creating_a_limited_key_in_the_dialog(signed_in, user, flows):
    response = signed_in.post(CREATE, {
        "name": "ci", "scope": "chosen", "flows": [str(flows[0].pk), str(flows[2].pk)], "permissions": ["run"],
        "allowed_ips": "203.0.113.7\n10.0.0.0/8",
    })
    assert response.status_code == 302
    api_key = ApiKey.objects.get(user=user)
    assert (api_key.all_flows, set(api_key.flow_ids), api_key.permissions, api_key.allowed_ips) == (
        False, {str(flows[0].pk), str(flows[2].pk)}, ["run"], ["203.0.113.7/32", "10.0.0.0/8"])
    created = api_key.events.get(kind=ApiKeyEvent.Kind.CREATED)
    assert (created.data["access"]["permissions"], created.data["access"]["allowed_ips"]) == (
        ["run"], ["203.0.113.7/32", "10.0.0.0/8"])


def test_all_my_flows_ignores_flows_left_ticked(signed_in, user, flows):
    signed_in.post(CREATE, {"scope": "all", "flows": [str(flows[0].pk)], "permissions": ["run", "read", "write"]})
    api_key = ApiKey.objects.get(user=user)
    assert (api_key.all_flows, api_key.flow_ids) == (True, [])


def test_a_post_that_predates_the_access_fields_makes_a_full_access_key(signed_in, user):
    assert signed_in.post(CREATE, {"name": "old script"}).status_code == 302
    assert ApiKey.objects.get(user=user).has_full_access


def test_each_bad_allowed_ip_is_a_form_error_in_the_open_dialog_and_the_input_is_kept(signed_in, user, flows):
    text = "203.0.113.7\n10.0.0.300\nintranet.example"
    response = signed_in.post(CREATE, {"name": "ci", "scope": "all", "permissions": ["run"], "allowed_ips": text})
    body = response.content.decode()
    assert response.status_code == 400
    assert re.search(r'<dialog id="create-key-dialog"[^>]*\sopen[\s>]', body)
    assert [error.split(" is not")[0] for error in errors_of(body, "allowed_ips")] == [
        "“10.0.0.300”", "“intranet.example”"]
    assert "203.0.113.7\n10.0.0.300\nintranet.example</textarea>" in body
    assert not ApiKey.objects.filter(user=user).exists()


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"scope": "chosen", "permissions": ["run"]}, "flows", "Choose at least one flow"),
    ({"scope": "all"}, "permissions", "Choose at least one permission."),
    ({"scope": "all", "permissions": ["run", "admin"]}, "permissions", "“admin” is not a permission"),
    ({"scope": "everything", "permissions": ["run"]}, "scope", "Select a valid choice"),
])
def test_missing_or_bad_choices_are_form_errors(signed_in, user, flows, data, field, message):
    response = signed_in.post(CREATE, data)
    assert response.status_code == 400
    assert any(message in error for error in errors_of(response.content.decode(), field))
    assert not ApiKey.objects.filter(user=user).exists()


def test_another_users_flow_is_refused_like_a_missing_one(signed_in, user, other_user, flows):
    theirs = Flow.objects.create(owner=other_user, name="Theirs")
    missing = "5d8a0c39-2d53-4a4b-8f35-0a4c8c2f3e70"
    messages = []
    for flow_id in (str(theirs.pk), missing):
        response = signed_in.post(CREATE, {"scope": "chosen", "flows": [flow_id], "permissions": ["run"]})
        assert response.status_code == 400
        messages.append(errors_of(response.content.decode(), "flows"))
    assert messages == [[f"“{theirs.pk}” is not one of your flows."], [f"“{missing}” is not one of your flows."]]
    assert "Theirs" not in response.content.decode()
    assert not ApiKey.objects.filter(user=user).exists()


def test_the_list_shows_each_keys_scope_and_permissions_at_a_glance(signed_in, user, flows):
    full, _raw = create_api_key(user=user, name="full")
    two, _raw = create_api_key(user=user, name="two", access=KeyAccess(
        all_flows=False, flow_ids=(str(flows[0].pk), str(flows[1].pk)), permissions=("run", "read"),
        allowed_ips=("10.0.0.0/8",)))
    body = signed_in.get(LIST).content.decode()
    rows = {api_key.name: body.split(f'data-key-id="{api_key.pk}"')[1].split("</tr>")[0] for api_key in (full, two)}
    assert "All flows" in rows["full"] and "run, read, write" in rows["full"] and "IP-limited" not in rows["full"]
    assert "2 flows" in rows["two"] and "run, read<" in rows["two"] and "IP-limited" in rows["two"]
    assert "10.0.0.0/8" not in rows["two"]  # the list says whether, the key's page says which


def test_the_key_page_shows_its_access_and_a_form_to_change_it(signed_in, user, flows):
    api_key, _raw = create_api_key(user=user, access=KeyAccess(
        all_flows=False, flow_ids=(str(flows[1].pk),), permissions=("run",), allowed_ips=("2001:db8::/32",)))
    body = signed_in.get(detail_url(api_key)).content.decode()
    access = body.split('id="access-title"')[1].split("</dl>")[0]
    assert f'href="{reverse("flows:detail", args=[flows[1].pk])}">Summary</a>' in access
    assert "Echo" not in access and "Run flows" in access and "<code>2001:db8::/32</code>" in access
    assert f'action="{access_url(api_key)}"' in body
    assert re.search(rf'<input type="checkbox" name="flows" value="{flows[1].pk}"[^>]*checked', body)
    assert not re.search(rf'<input type="checkbox" name="flows" value="{flows[0].pk}"[^>]*checked', body)
    assert "2001:db8::/32</textarea>" in body


def test_changing_access_on_the_key_page_is_applied_and_audited(signed_in, user, flows):
    api_key, _raw = create_api_key(user=user)
    response = signed_in.post(access_url(api_key), {
        "scope": "chosen", "flows": [str(flows[0].pk)], "permissions": ["read"], "allowed_ips": "203.0.113.0/24",
    }, REMOTE_ADDR="203.0.113.20", follow=True)
    body = response.content.decode()
    assert response.redirect_chain == [(detail_url(api_key), 302)]
    assert "Access changed, from the next request on" in body
    api_key.refresh_from_db()
    assert (api_key.all_flows, api_key.flow_ids, api_key.permissions, api_key.allowed_ips) == (
        False, [str(flows[0].pk)], ["read"], ["203.0.113.0/24"])
    events = api_key.events.filter(kind=ApiKeyEvent.Kind.ACCESS_CHANGED)
    assert events.count() == 3
    assert {(event.actor, event.actor_user, event.client_ip) for event in events} == {("owner", user, "203.0.113.20")}
    audit = body.split('id="audit-title"')[1]
    assert "Access changed" in audit and "Permissions: run, read, write → read" in audit


def test_saving_unchanged_access_says_so_and_logs_nothing(signed_in, user):
    api_key, _raw = create_api_key(user=user)
    response = signed_in.post(access_url(api_key), {"scope": "all", "permissions": ["run", "read", "write"]},
                              follow=True)
    assert "Nothing changed." in response.content.decode()
    assert not api_key.events.filter(kind=ApiKeyEvent.Kind.ACCESS_CHANGED).exists()


def test_a_bad_change_is_shown_on_the_key_page_with_the_form_open(signed_in, user):
    api_key, _raw = create_api_key(user=user)
    response = signed_in.post(access_url(api_key), {"scope": "all", "permissions": ["run"], "allowed_ips": "nope"})
    body = response.content.decode()
    assert response.status_code == 400
    assert re.search(r'<details class="access-change" open>', body)
    assert errors_of(body, "allowed_ips")[0].startswith("“nope” is not")
    assert ApiKey.objects.get(pk=api_key.pk).has_full_access


def test_a_change_without_the_scope_field_never_widens_a_key(signed_in, user, flows):
    api_key, _raw = create_api_key(user=user, access=KeyAccess(all_flows=False, flow_ids=(str(flows[0].pk),),
                                                               permissions=("run",)))
    response = signed_in.post(access_url(api_key), {"permissions": ["run", "read", "write"]})
    assert response.status_code == 400
    api_key.refresh_from_db()
    assert (api_key.all_flows, api_key.permissions) == (False, ["run"])


def test_another_users_key_cannot_be_changed(signed_in, other_user):
    theirs, _raw = create_api_key(user=other_user)
    response = signed_in.post(access_url(theirs), {"scope": "all", "permissions": ["run"]})
    assert response.status_code == 404
    assert ApiKey.objects.get(pk=theirs.pk).permissions == ["run", "read", "write"]


def test_a_revoked_key_shows_its_access_but_offers_no_change_and_refuses_one(signed_in, user):
    api_key, _raw = create_api_key(user=user)
    revoke_api_key(api_key)
    body = signed_in.get(detail_url(api_key)).content.decode()
    assert 'id="access-title"' in body and access_url(api_key) not in body
    response = signed_in.post(access_url(api_key), {"scope": "all", "permissions": ["run"]}, follow=True)
    assert "revoked" in response.content.decode()
    assert ApiKey.objects.get(pk=api_key.pk).permissions == ["run", "read", "write"]


def test_changing_access_needs_post_a_sign_in_and_csrf(client, user):
    api_key, _raw = create_api_key(user=user)
    assert client.post(access_url(api_key), {"scope": "all", "permissions": ["run"]}).status_code == 302  # sign in
    client.force_login(user)
    assert client.get(access_url(api_key)).status_code == 405
    client.handler.enforce_csrf_checks = True
    assert client.post(access_url(api_key), {"scope": "all", "permissions": ["run"]}).status_code == 403
    assert ApiKey.objects.get(pk=api_key.pk).permissions == ["run", "read", "write"]


def test_a_key_whose_flows_were_deleted_says_it_reaches_none(signed_in, user, flows):
    api_key, _raw = create_api_key(user=user, access=KeyAccess(all_flows=False, flow_ids=(str(flows[0].pk),)))
    delete_flow(flows[0])
    body = signed_in.get(detail_url(api_key)).content.decode()
    assert "the flows it was limited to were deleted" in body
    assert "No flows" in signed_in.get(LIST).content.decode()
