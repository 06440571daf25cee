"""A key's access: validation of flows, permissions and allowed IPs; changing it; deleted flows; the IP check."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from apikeys import access
from apikeys.access import KeyAccess
from apikeys.audit import describe
from apikeys.models import ApiKey, ApiKeyEvent
from apikeys.services import (
    AddressNotAllowed,
    InvalidApiKey,
    KeyNotActive,
    authenticate_api_key,
    change_key_access,
    create_api_key,
    remove_flow_from_key_scopes,
    revoke_api_key,
)
from flows import services as flow_services
from flows.models import Flow

pytestmark = pytest.mark.django_db

CHANGED = ApiKeyEvent.Kind.ACCESS_CHANGED


@pytest.fixture
def flow(user):
    return Flow.objects.create(owner=user, name="Echo")


@pytest.fixture
def second_flow(user):
    return Flow.objects.create(owner=user, name="Summary")


# --- Validation ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("entry", "network"), [
    ("203.0.113.7", "203.0.113.7/32"),
    ("10.1.2.3/8", "10.0.0.0/8"),
    (" 192.168.0.0/16 ", "192.168.0.0/16"),
    ("2001:db8::1", "2001:db8::1/128"),
    ("2001:DB8:0:0::/32", "2001:db8::/32"),
    ("::ffff:10.0.0.1", "10.0.0.1/32"),
    ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
    ("0.0.0.0/1", "0.0.0.0/1"),
])
def test_allowed_ips_are_stored_as_normalised_networks(entry, network):
    assert access.clean_allowed_ips([entry]) == (network,)


@pytest.mark.parametrize(("entries", "families"), [
    (["0.0.0.0/0"], "every IPv4 address"),
    (["::/0"], "every IPv6 address"),
    (["10.0.0.1", "0.0.0.0/0", "::/0"], "every IPv4 and every IPv6 address"),
    (["0.0.0.0/1", "128.0.0.0/1"], "every IPv4 address"),
    (["::ffff:0.0.0.0/96"], "every IPv4 address"),
    (["1.2.3.4/0"], "every IPv4 address"),
    (["::/1", "8000::/1", "10.0.0.0/8"], "every IPv6 address"),
])
def test_an_allow_list_covering_a_whole_address_family_is_refused_as_no_limit(entries, families):
    with pytest.raises(ValidationError) as caught:
        access.clean_allowed_ips(entries)
    [message] = caught.value.messages
    assert f"cover {families}, which is no limit" in message and "leave them empty" in message


def test_the_key_api_refuses_it_with_that_message(client, user):
    client.force_login(user)
    response = client.post("/api/v1/api_key/", {"name": "x", "allowed_ips": ["0.0.0.0/0"]},
                           content_type="application/json")
    assert response.status_code == 422 and "which is no limit" in response.json()["errors"]["allowed_ips"][0]
    api_key, _ = create_api_key(user=user)
    response = client.patch(f"/api/v1/api_key/{api_key.pk}", {"allowed_ips": ["::/0"]},
                            content_type="application/json")
    assert response.status_code == 422 and "every IPv6 address" in response.json()["detail"]
    assert ApiKey.objects.get(pk=api_key.pk).allowed_ips == []


def test_allowed_ips_from_a_textarea_split_on_lines_commas_and_spaces_and_lose_duplicates():
    text = "203.0.113.7\n10.0.0.0/8, 2001:db8::/32\r\n\n203.0.113.7/32  10.9.9.9/8"
    assert access.clean_allowed_ips(text) == ("203.0.113.7/32", "10.0.0.0/8", "2001:db8::/32")


def test_every_bad_allowed_ip_gets_its_own_error():
    with pytest.raises(ValidationError) as caught:
        access.clean_allowed_ips(["10.0.0.1", "10.0.0.300", "host.example", "10.0.0.0/33", "fe80::1%eth0", "1",
                                  "10.0.0.1/8/2"])
    messages = caught.value.messages
    assert len(messages) == 6
    for bad in ("10.0.0.300", "host.example", "10.0.0.0/33", "fe80::1%eth0", "“1”", "10.0.0.1/8/2"):
        assert any(bad in message for message in messages), bad


def test_allowed_ips_are_limited_in_number():
    entries = [f"10.0.{n // 256}.{n % 256}" for n in range(access.MAX_ALLOWED_IPS + 1)]
    with pytest.raises(ValidationError, match="At most 50"):
        access.clean_allowed_ips(entries)
    assert len(access.clean_allowed_ips(entries[:-1])) == access.MAX_ALLOWED_IPS


def test_permissions_come_back_in_the_usual_order_and_must_be_known_and_not_none():
    assert access.clean_permissions(["write", "run", "run"]) == ("run", "write")
    with pytest.raises(ValidationError, match="at least one"):
        access.clean_permissions([])
    with pytest.raises(ValidationError, match="“admin” is not a permission"):
        access.clean_permissions(["run", "admin"])


def test_flow_ids_must_name_the_owners_flows_and_another_users_read_like_missing_ones(user, other_user, flow):
    theirs = Flow.objects.create(owner=other_user, name="Theirs")
    missing = "5d8a0c39-2d53-4a4b-8f35-0a4c8c2f3e70"
    assert access.clean_flow_ids(user, [str(flow.pk).upper(), flow.pk]) == (str(flow.pk),)
    errors = {}
    for value in (str(theirs.pk), missing):
        with pytest.raises(ValidationError) as caught:
            access.clean_flow_ids(user, [str(flow.pk), value])
        errors[value] = caught.value.messages
    assert errors[str(theirs.pk)] == [f"“{theirs.pk}” is not one of your flows."]
    assert errors[missing] == [f"“{missing}” is not one of your flows."]
    with pytest.raises(ValidationError, match="“nope” is not one of your flows"):
        access.clean_flow_ids(user, ["nope"])


def test_a_full_access_value_never_keeps_a_flow_list():
    assert KeyAccess(all_flows=True, flow_ids=("x",)).flow_ids == ()


# --- The key row --------------------------------------------------------------------------------

def test_a_new_key_has_full_access_by_default(user):
    api_key, _raw = create_api_key(user=user)
    assert (api_key.all_flows, api_key.flow_ids, api_key.permissions, api_key.allowed_ips) == (
        True, [], ["run", "read", "write"], [])
    assert api_key.has_full_access and api_key.scope_label == "All flows"
    assert api_key.permissions_label == "run, read, write"


def test_labels_say_the_scope_and_permissions_at_a_glance(user, flow, second_flow):
    one = ApiKey(all_flows=False, flow_ids=[str(flow.pk)], permissions=["read", "run"])
    two = ApiKey(all_flows=False, flow_ids=[str(flow.pk), str(second_flow.pk)], permissions=["write"])
    none = ApiKey(all_flows=False, flow_ids=[], permissions=["run"])
    assert (one.scope_label, one.permissions_label) == ("1 flow", "run, read")
    assert (two.scope_label, none.scope_label) == ("2 flows", "No flows")
    assert not one.has_full_access


@pytest.mark.parametrize(("address", "allowed"), [
    ("203.0.113.7", True), ("203.0.113.8", False), ("10.200.1.1", True), ("2001:db8::5", True),
    ("2001:db9::5", False), (None, False), ("not-an-ip", False), ("::ffff:10.1.1.1", True),
])
def test_a_key_allows_only_addresses_in_its_networks(address, allowed):
    api_key = ApiKey(allowed_ips=["203.0.113.7/32", "10.0.0.0/8", "2001:db8::/32"])
    assert api_key.allows_address(address) is allowed


def test_a_key_without_allowed_ips_allows_any_address_even_an_unknown_one():
    assert ApiKey(allowed_ips=[]).allows_address(None)


# --- Creating and changing ----------------------------------------------------------------------

def test_creating_a_limited_key_logs_its_limits(user, flow):
    api_key, _raw = create_api_key(user=user, access=KeyAccess(
        all_flows=False, flow_ids=(str(flow.pk),), permissions=("run",), allowed_ips=("10.0.0.0/8",)))
    event = api_key.events.get(kind=ApiKeyEvent.Kind.CREATED)
    assert event.data == {"expires_at": None, "rate_limit": "", "access": {
        "all_flows": False, "flows": [{"id": str(flow.pk), "name": "Echo"}], "permissions": ["run"],
        "allowed_ips": ["10.0.0.0/8"]}}
    assert describe(event) == "never expires; flows: “Echo”; permissions: run; allowed IPs: 10.0.0.0/8"


def test_each_changed_aspect_is_one_audit_line_with_who_and_where(user, flow):
    api_key, _raw = create_api_key(user=user)
    changes = change_key_access(
        api_key, KeyAccess(all_flows=False, flow_ids=(str(flow.pk),), permissions=("run", "read"),
                           allowed_ips=("2001:db8::/32",)),
        actor_user=user, client_ip="203.0.113.7",
    )
    events = list(api_key.events.filter(kind=CHANGED).order_by("id"))
    assert changes == events
    assert [event.data for event in events] == [
        {"field": "flows", "before": {"all_flows": True, "flows": []},
         "after": {"all_flows": False, "flows": [{"id": str(flow.pk), "name": "Echo"}]}},
        {"field": "permissions", "before": ["run", "read", "write"], "after": ["run", "read"]},
        {"field": "allowed_ips", "before": [], "after": ["2001:db8::/32"]},
    ]
    assert [describe(event) for event in events] == [
        "Flows: all flows → “Echo”",
        "Permissions: run, read, write → run, read",
        "Allowed IPs: anywhere → 2001:db8::/32",
    ]
    assert {(event.actor, event.actor_user, event.client_ip) for event in events} == {("owner", user, "203.0.113.7")}
    stored = ApiKey.objects.get(pk=api_key.pk)
    assert (stored.all_flows, stored.flow_ids, stored.permissions, stored.allowed_ips) == (
        False, [str(flow.pk)], ["run", "read"], ["2001:db8::/32"])
    assert (api_key.all_flows, api_key.permissions) == (False, ["run", "read"])


def test_changing_nothing_logs_nothing(user):
    api_key, _raw = create_api_key(user=user)
    assert change_key_access(api_key, KeyAccess()) == []
    assert not api_key.events.filter(kind=CHANGED).exists()


def test_a_revoked_or_expired_keys_access_cannot_change(user):
    revoked, _raw = create_api_key(user=user)
    revoke_api_key(revoked)
    expired, _raw = create_api_key(user=user, expires_at=timezone.now() + datetime.timedelta(seconds=1))
    ApiKey.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    for api_key in (revoked, ApiKey.objects.get(pk=expired.pk)):
        with pytest.raises(KeyNotActive):
            change_key_access(api_key, KeyAccess(permissions=("run",)))
        assert ApiKey.objects.get(pk=api_key.pk).permissions == ["run", "read", "write"]
        assert change_key_access(api_key, KeyAccess()) == []  # nothing to change is no error


# --- Which flows a key reaches -----------------------------------------------------------------

@pytest.mark.parametrize("scope", ["all", "one", "none"])
def test_a_runs_lookup_and_the_flow_list_read_the_same_answer_from_the_keys_flow_scope(user, flow, second_flow,
                                                                                      scope):
    api_key = ApiKey(user=user, all_flows=scope == "all", flow_ids=[str(flow.pk)] if scope == "one" else [])
    expected = {"all": {flow.pk, second_flow.pk}, "one": {flow.pk}, "none": set()}[scope]
    assert api_key.flow_scope == {"all": None, "one": (str(flow.pk),), "none": ()}[scope]
    listed = set(Flow.objects.visible_to(user, api_key).values_list("pk", flat=True))
    reached = {candidate.pk for candidate in (flow, second_flow) if api_key.reaches_flow(candidate.pk)}
    assert listed == reached == expected


# --- Deleted flows --------------------------------------------------------------------------------

def test_deleting_a_flow_takes_it_out_of_every_key_that_had_it_and_only_those(user, flow, second_flow):
    both, _raw = create_api_key(user=user, access=KeyAccess(all_flows=False,
                                                            flow_ids=(str(flow.pk), str(second_flow.pk))))
    only, _raw = create_api_key(user=user, access=KeyAccess(all_flows=False, flow_ids=(str(flow.pk),)))
    other, _raw = create_api_key(user=user, access=KeyAccess(all_flows=False, flow_ids=(str(second_flow.pk),)))
    full, _raw = create_api_key(user=user)
    flow_id = str(flow.pk)
    flow_services.delete_flow(flow)
    assert ApiKey.objects.get(pk=both.pk).flow_ids == [str(second_flow.pk)]
    assert ApiKey.objects.get(pk=only.pk).flow_ids == []
    assert ApiKey.objects.get(pk=only.pk).all_flows is False  # no flows left means none, never all
    assert ApiKey.objects.get(pk=other.pk).flow_ids == [str(second_flow.pk)]
    events = {event.api_key_id: event for event in ApiKeyEvent.objects.filter(kind=CHANGED)}
    assert events[both.pk].data == {
        "field": "flows", "cause": "flow_deleted", "flow": {"id": flow_id, "name": "Echo"}, "flows_left": 1,
        "before": {"all_flows": False, "flows": [{"id": flow_id, "name": "Echo"},
                                                 {"id": str(second_flow.pk), "name": second_flow.name}]},
        "after": {"all_flows": False, "flows": [{"id": str(second_flow.pk), "name": second_flow.name}]},
    }
    assert {key_id: describe(event) for key_id, event in events.items()} == {
        both.pk: "Flows: “Echo” was deleted and removed from this key (1 flow left)",
        only.pk: "Flows: “Echo” was deleted and removed from this key (no flows left)",
    }
    assert not full.events.filter(kind=CHANGED).exists()


def test_removing_a_flow_costs_one_update_per_key_that_had_it(user, flow, second_flow, django_assert_num_queries):
    for _ in range(2):
        create_api_key(user=user, access=KeyAccess(all_flows=False, flow_ids=(str(flow.pk),)))
    create_api_key(user=user, access=KeyAccess(all_flows=False, flow_ids=(str(second_flow.pk),)))
    # One SELECT of the keys (their other flows' names would be one more: they have none), then per
    # key one UPDATE and one audit INSERT.
    with django_assert_num_queries(1 + 2 * 2):
        assert remove_flow_from_key_scopes(flow) == 2


def test_the_admin_deleting_flows_takes_them_out_of_the_keys(admin_client, user, flow, second_flow):
    api_key, _raw = create_api_key(user=user, access=KeyAccess(all_flows=False,
                                                               flow_ids=(str(flow.pk), str(second_flow.pk))))
    admin_client.post(f"/admin/flows/flow/{flow.pk}/delete/", {"post": "yes"})
    assert ApiKey.objects.get(pk=api_key.pk).flow_ids == [str(second_flow.pk)]
    admin_client.post("/admin/flows/flow/", {"action": "delete_selected", "_selected_action": [str(second_flow.pk)],
                                             "post": "yes"})
    assert not Flow.objects.exists()
    assert ApiKey.objects.get(pk=api_key.pk).flow_ids == []


# --- Authentication from an address -------------------------------------------------------------

def test_a_right_key_from_a_refused_address_raises_address_not_allowed_and_is_not_counted(user):
    api_key, raw = create_api_key(user=user, access=KeyAccess(allowed_ips=("203.0.113.0/24",)))
    with pytest.raises(AddressNotAllowed) as caught:
        authenticate_api_key(raw, client_ip="198.51.100.1")
    assert (caught.value.reason, caught.value.api_key.pk) == (ApiKeyEvent.FailureReason.ADDRESS_NOT_ALLOWED, api_key.pk)
    with pytest.raises(AddressNotAllowed):
        authenticate_api_key(raw)  # an unknown address is not an allowed one
    assert ApiKey.objects.get(pk=api_key.pk).total_uses == 0
    assert authenticate_api_key(raw, client_ip="203.0.113.200").pk == api_key.pk


def test_a_wrong_secret_from_a_refused_address_is_an_ordinary_invalid_key(user):
    _api_key, raw = create_api_key(user=user, access=KeyAccess(allowed_ips=("203.0.113.0/24",)))
    wrong = raw[:-12] + ("A" if raw[-12] != "A" else "B") + raw[-11:]
    with pytest.raises(InvalidApiKey) as caught:
        authenticate_api_key(wrong, client_ip="198.51.100.1")
    assert not isinstance(caught.value, AddressNotAllowed)


def test_a_revoked_key_from_a_refused_address_says_only_that_it_is_invalid(api_client, user):
    api_key, raw = create_api_key(user=user, access=KeyAccess(allowed_ips=("203.0.113.0/24",)))
    revoke_api_key(api_key)
    response = api_client.get("/api/v1/users/whoami", HTTP_X_API_KEY=raw, REMOTE_ADDR="198.51.100.1")
    assert response.json() == {"detail": "Invalid or missing API key"}


def test_whoami_with_a_limited_key_works_from_an_allowed_address(api_client, user):
    _api_key, raw = create_api_key(user=user, access=KeyAccess(permissions=("run",), allowed_ips=("203.0.113.7",)))
    response = api_client.get("/api/v1/users/whoami", HTTP_X_API_KEY=raw, REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 200 and response.json()["username"] == "alice"
