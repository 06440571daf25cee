"""The key API and a key's access: set at creation (POST), changed with PATCH, by a signed-in session only."""

import pytest
from rest_framework.test import APIClient

from apikeys.access import KeyAccess
from apikeys.audit import describe
from apikeys.models import ApiKey, ApiKeyEvent
from apikeys.services import create_api_key, revoke_api_key
from flows.models import Flow
from flows.services import delete_flow

pytestmark = pytest.mark.django_db

KEYS = "/api/v1/api_key/"
MISSING = "5d8a0c39-2d53-4a4b-8f35-0a4c8c2f3e70"
API_KEY_REFUSED = {"detail": "API keys cannot manage API keys; sign in to manage them."}


@pytest.fixture
def session(user):
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def flow(user):
    return Flow.objects.create(owner=user, name="Echo")


def detail(api_key) -> str:
    return f"{KEYS}{api_key.pk}"


def test_a_key_created_without_access_fields_has_full_access(session):
    body = session.post(KEYS, {"name": "plain"}, format="json").json()
    assert (body["all_flows"], body["flow_ids"], body["permissions"], body["allowed_ips"]) == (
        True, [], ["run", "read", "write"], [])


def test_create_a_limited_key(session, flow):
    response = session.post(KEYS, {"name": "ci", "flow_ids": [str(flow.pk)], "permissions": ["write", "run"],
                                   "allowed_ips": ["10.1.2.3/8", "2001:db8::1"]}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["all_flows"], body["flow_ids"], body["permissions"], body["allowed_ips"]) == (
        False, [str(flow.pk)], ["run", "write"], ["10.0.0.0/8", "2001:db8::1/128"])
    api_key = ApiKey.objects.get(pk=body["id"])
    assert (api_key.all_flows, api_key.flow_ids, api_key.permissions) == (False, [str(flow.pk)], ["run", "write"])
    listed = session.get(detail(api_key)).json()
    assert listed["flow_ids"] == [str(flow.pk)] and listed["allowed_ips"] == ["10.0.0.0/8", "2001:db8::1/128"]


def test_another_users_flow_id_is_refused_exactly_like_a_missing_one(session, other_user, flow):
    theirs = Flow.objects.create(owner=other_user, name="Theirs")
    answers = {}
    for flow_id in (str(theirs.pk), MISSING):
        response = session.post(KEYS, {"flow_ids": [flow_id]}, format="json")
        assert response.status_code == 422
        answers[flow_id] = response.json()["errors"]["flow_ids"]
    assert answers[str(theirs.pk)] == [f"“{theirs.pk}” is not one of your flows."]
    assert answers[MISSING] == [f"“{MISSING}” is not one of your flows."]
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize(("payload", "field", "message"), [
    ({"permissions": []}, "permissions", "Choose at least one permission"),
    ({"permissions": ["admin"]}, "permissions", "“admin” is not a permission: use run, read or write."),
    ({"permissions": [{"run": 1}]}, "permissions", "Expected a permission"),
    ({"allowed_ips": ["10.0.0.300", "10.0.0.1", "example.com"]}, "allowed_ips", "“10.0.0.300” is not an IPv4"),
    ({"allowed_ips": [f"10.0.0.{n}" for n in range(51)]}, "allowed_ips", "At most 50 addresses or ranges (there are 51)"),
    ({"allowed_ips": ["10.0.0.1"] * 5000}, "allowed_ips", "At most 50 addresses or ranges (there are more than 1000)"),
    ({"all_flows": False}, "flow_ids", "Choose at least one flow"),
    ({"flow_ids": []}, "flow_ids", "Choose at least one flow"),
    ({"all_flows": True, "flow_ids": [MISSING]}, "flow_ids", "Leave the flows out when the key may use all flows."),
    ({"flow_ids": ["not-a-uuid"]}, "flow_ids", "“not-a-uuid” is not one of your flows."),
    ({"flow_ids": [MISSING] * 101}, "flow_ids", "“5d8a0c39-2d53-4a4b-8f35-0a4c8c2f3e70” is not one of your flows."),
    ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at", "The expiry must be in the future."),
    ({"expires_at": "2999-01-01T00:00:00Z"}, "expires_at", "at most ten years"),
])
def test_bad_access_fields_are_a_422_naming_the_field(session, payload, field, message):
    response = session.post(KEYS, payload, format="json")
    assert response.status_code == 422
    assert message in str(response.json()["errors"][field]), response.json()
    assert not ApiKey.objects.exists()


def test_each_bad_allowed_ip_is_named(session):
    response = session.post(KEYS, {"allowed_ips": ["10.0.0.300", "10.0.0.1", "example.com"]}, format="json")
    assert response.json()["errors"]["allowed_ips"] == [
        "“10.0.0.300” is not an IPv4 or IPv6 address or CIDR range (e.g. 203.0.113.7, 10.0.0.0/8, 2001:db8::/32).",
        "“example.com” is not an IPv4 or IPv6 address or CIDR range (e.g. 203.0.113.7, 10.0.0.0/8, 2001:db8::/32).",
    ]


def test_patch_changes_only_what_it_names_and_logs_each_change(session, user, flow):
    api_key, _raw = create_api_key(user=user, access=KeyAccess(allowed_ips=("10.0.0.0/8",)))
    response = session.patch(detail(api_key), {"flow_ids": [str(flow.pk)], "permissions": ["run"]}, format="json",
                             REMOTE_ADDR="203.0.113.5")
    assert response.status_code == 200
    body = response.json()
    assert (body["all_flows"], body["flow_ids"], body["permissions"], body["allowed_ips"]) == (
        False, [str(flow.pk)], ["run"], ["10.0.0.0/8"])
    assert "*" in body["api_key"]  # masked: a PATCH never shows the secret
    events = ApiKeyEvent.objects.filter(api_key=api_key, kind=ApiKeyEvent.Kind.ACCESS_CHANGED).order_by("id")
    assert [(describe(e), e.actor, e.actor_user, e.client_ip) for e in events] == [
        ("Flows: all flows → “Echo”", "owner", user, "203.0.113.5"),
        ("Permissions: run, read, write → run", "owner", user, "203.0.113.5"),
    ]
    widened = session.patch(detail(api_key), {"all_flows": True, "allowed_ips": []}, format="json").json()
    assert (widened["all_flows"], widened["flow_ids"], widened["permissions"], widened["allowed_ips"]) == (
        True, [], ["run"], [])


def test_patch_to_a_scope_without_flows_is_refused_but_other_changes_to_an_emptied_key_are_not(session, user, flow):
    api_key, _raw = create_api_key(user=user, access=KeyAccess(all_flows=False, flow_ids=(str(flow.pk),)))
    delete_flow(flow)
    assert session.patch(detail(api_key), {"flow_ids": []}, format="json").status_code == 422
    response = session.patch(detail(api_key), {"permissions": ["read"]}, format="json")
    assert response.status_code == 200 and response.json()["flow_ids"] == []


def test_an_api_key_can_change_no_key_not_even_itself(api_client, user, flow):
    api_key, raw = create_api_key(user=user, access=KeyAccess(all_flows=False, flow_ids=(str(flow.pk),),
                                                              permissions=("run",)))
    for payload in ({"all_flows": True}, {"permissions": ["run", "read", "write"]}, {"allowed_ips": []}):
        response = api_client.patch(detail(api_key), payload, format="json", HTTP_X_API_KEY=raw)
        assert response.status_code == 403 and response.json() == API_KEY_REFUSED
    created = api_client.post(KEYS, {"name": "wider"}, format="json", HTTP_X_API_KEY=raw)
    assert created.status_code == 403
    api_key.refresh_from_db()
    assert (api_key.all_flows, api_key.permissions) == (False, ["run"])
    assert ApiKey.objects.count() == 1


def test_patch_without_a_session_or_on_another_users_key_changes_nothing(api_client, session, other_user):
    theirs, _raw = create_api_key(user=other_user)
    assert api_client.patch(detail(theirs), {"permissions": ["run"]}, format="json").status_code == 403
    missing = session.patch(f"{KEYS}{MISSING}", {"permissions": ["run"]}, format="json")
    another = session.patch(detail(theirs), {"permissions": ["run"]}, format="json")
    assert another.status_code == missing.status_code == 404 and another.content == missing.content
    assert ApiKey.objects.get(pk=theirs.pk).permissions == ["run", "read", "write"]


def test_patch_on_a_revoked_key_is_a_409(session, user):
    api_key, _raw = create_api_key(user=user)
    revoke_api_key(api_key)
    response = session.patch(detail(api_key), {"permissions": ["run"]}, format="json")
    assert response.status_code == 409 and "revoked" in response.json()["detail"]


def test_patch_needs_the_csrf_token(user):
    api_key, _raw = create_api_key(user=user)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.patch(detail(api_key), {"permissions": ["run"]}, format="json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    assert ApiKey.objects.get(pk=api_key.pk).permissions == ["run", "read", "write"]


def test_the_schema_documents_the_access_fields_and_the_patch(client):
    schema = client.get("/api/v1/schema/", {"format": "json"}).json()
    patch = schema["paths"]["/api/v1/api_key/{key_id}"]["patch"]
    assert patch["security"] == [{"cookieAuth": []}]
    assert {"200", "403", "404", "409", "422"} <= set(patch["responses"])
    created = schema["components"]["schemas"]["ApiKeyCreateRequest"]["properties"]
    assert {"all_flows", "flow_ids", "permissions", "allowed_ips"} <= set(created)
