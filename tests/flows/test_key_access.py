"""Fine-grained keys on every flow and run route: flow scope, permissions, allowed IPs, and their mixes."""

import json
import uuid

import pytest

from apikeys.access import KeyAccess
from apikeys.models import ApiKey, ApiKeyEvent
from flows import services
from flows.models import Flow

pytestmark = pytest.mark.django_db

NOT_FOUND = {"detail": "Flow not found"}
MISSING = "5d8a0c39-2d53-4a4b-8f35-0a4c8c2f3e70"
ADDRESS_REFUSED = {"detail": "This API key may not be used from your address."}
HOME = "203.0.113.9"  # documentation addresses, never contacted
ELSEWHERE = "198.51.100.7"


def lacks(permission: str) -> dict:
    return {"detail": f"This API key lacks the '{permission}' permission"}


@pytest.fixture
def scoped_key(user, make_key):
    """Return ``make(flows, permissions=..., allowed_ips=...)``: a raw key limited to those flows."""

    def make(flows=None, permissions=("run", "read", "write"), allowed_ips=()):
        access = KeyAccess(all_flows=flows is None, flow_ids=tuple(str(flow.pk) for flow in flows or ()),
                           permissions=tuple(permissions), allowed_ips=tuple(allowed_ips))
        return make_key(user, access=access)[1]

    return make


def call(api_client, method, url, key, body=None, **extra):
    return getattr(api_client, method)(url, body, format="json", HTTP_X_API_KEY=key, **extra)


# (name, method, url with {flow}, body, the permission it needs)
FLOW_ROUTES = [
    ("read", "get", "/api/v1/flows/{flow}", None, "read"),
    ("patch", "patch", "/api/v1/flows/{flow}", {"description": "changed"}, "write"),
    ("put", "put", "/api/v1/flows/{flow}", {"name": "Replaced"}, "write"),
    ("delete", "delete", "/api/v1/flows/{flow}", None, "write"),
    ("run", "post", "/api/v1/run/{flow}", {"input_value": "hi"}, "run"),
    ("stream", "post", "/api/v1/run/{flow}?stream=true", {"input_value": "hi"}, "run"),
    ("process", "post", "/api/v1/process/{flow}", {"inputs": {"text": "hi"}}, "run"),
]
ROUTE_IDS = [route[0] for route in FLOW_ROUTES]


@pytest.mark.parametrize(("name", "method", "url", "body", "needed"), FLOW_ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize("permission", ["run", "read", "write"])
def test_a_key_with_one_permission_may_use_the_routes_needing_it_and_gets_a_403_naming_it_elsewhere(
        api_client, echo_flow, scoped_key, name, method, url, body, needed, permission):
    key = scoped_key(permissions=[permission])
    response = call(api_client, method, url.format(flow=echo_flow.pk), key, body)
    if permission == needed:
        assert response.status_code == 200, response.content
    else:
        assert response.status_code == 403 and response.json() == lacks(needed)
        assert Flow.objects.get(pk=echo_flow.pk).name == "Echo"


@pytest.mark.parametrize(("name", "method", "url", "body", "needed"), FLOW_ROUTES, ids=ROUTE_IDS)
def test_a_scoped_key_uses_its_flow_and_gets_the_missing_flow_404_byte_for_byte_for_any_other(
        api_client, echo_flow, prompting_flow, scoped_key, name, method, url, body, needed):
    key = scoped_key([echo_flow])
    outside = call(api_client, method, url.format(flow=prompting_flow.pk), key, body)
    missing = call(api_client, method, url.format(flow=MISSING), key, body)
    assert outside.status_code == missing.status_code == 404
    assert outside.content == missing.content == json.dumps(NOT_FOUND, separators=(",", ":")).encode()
    assert outside["Content-Type"] == missing["Content-Type"]
    assert Flow.objects.get(pk=prompting_flow.pk).name == "Basic Prompting"
    inside = call(api_client, method, url.format(flow=echo_flow.pk), key, body)
    assert inside.status_code == 200, inside.content


def test_a_scoped_key_runs_its_flow_by_endpoint_name_and_no_other(api_client, user, echo_flow, scoped_key):
    other = services.create_flow(owner=user, name="Other", endpoint_name="other", data=echo_flow.data)
    key = scoped_key([echo_flow], permissions=["run"])
    assert call(api_client, "post", "/api/v1/run/echo", key, {"input_value": "hi"}).status_code == 200
    outside = call(api_client, "post", "/api/v1/run/other", key, {"input_value": "hi"})
    unknown = call(api_client, "post", "/api/v1/run/no-such-endpoint", key, {"input_value": "hi"})
    assert outside.content == unknown.content and outside.json() == NOT_FOUND
    assert call(api_client, "post", f"/api/v1/run/{other.pk}", scoped_key(), {"input_value": "hi"}).status_code == 200


def test_listing_flows_with_a_scoped_key_shows_only_its_flows(api_client, echo_flow, prompting_flow, scoped_key):
    response = call(api_client, "get", "/api/v1/flows/?get_all=true", scoped_key([echo_flow]))
    assert [item["id"] for item in response.json()] == [str(echo_flow.pk)]
    everything = call(api_client, "get", "/api/v1/flows/", scoped_key())
    assert {item["name"] for item in everything.json()} == {"Echo", "Basic Prompting"}


@pytest.mark.parametrize("permission", ["run", "write"])
def test_listing_flows_needs_the_read_permission(api_client, echo_flow, scoped_key, permission):
    response = call(api_client, "get", "/api/v1/flows/", scoped_key(permissions=[permission]))
    assert response.status_code == 403 and response.json() == lacks("read")


@pytest.mark.parametrize(("url", "body"), [
    ("/api/v1/flows/", {"name": "New"}),
    ("/api/v1/flows/upload/", {"name": "Uploaded"}),
])
def test_creating_flows_needs_write_and_every_flow(api_client, user, echo_flow, scoped_key, url, body):
    assert call(api_client, "post", url, scoped_key(permissions=["run", "read"]), body).json() == lacks("write")
    refused = call(api_client, "post", url, scoped_key([echo_flow]), body)
    assert refused.status_code == 403
    assert refused.json() == {"detail": "This API key is limited to chosen flows: it cannot create flows."}
    assert Flow.objects.filter(owner=user).count() == 1
    assert call(api_client, "post", url, scoped_key(permissions=["write"]), body).status_code == 201


def test_put_with_a_scoped_key_replaces_its_flow_but_creates_none(api_client, user, echo_flow, scoped_key):
    key = scoped_key([echo_flow])
    free_id = str(uuid.uuid4())
    created = call(api_client, "put", f"/api/v1/flows/{free_id}", key, {"name": "New"})
    missing = call(api_client, "get", f"/api/v1/flows/{MISSING}", key)
    assert created.status_code == 404 and created.content == missing.content
    assert not Flow.objects.filter(pk=free_id).exists()
    replaced = call(api_client, "put", f"/api/v1/flows/{echo_flow.pk}", key,
                    {"name": "Replaced", "data": echo_flow.data})
    assert replaced.status_code == 200 and replaced.json()["name"] == "Replaced"
    full = call(api_client, "put", f"/api/v1/flows/{free_id}", scoped_key(), {"name": "New"})
    assert full.status_code == 201


def test_a_run_only_key_scoped_to_flow_a(api_client, echo_flow, prompting_flow, scoped_key, settings):
    """The issue's combination: reads A (403), runs B (404), runs A from elsewhere (403), runs A (200)."""
    settings.TRUSTED_PROXIES = []
    key = scoped_key([echo_flow], permissions=["run"], allowed_ips=[f"{HOME}/32"])
    read_a = call(api_client, "get", f"/api/v1/flows/{echo_flow.pk}", key, REMOTE_ADDR=HOME)
    assert read_a.status_code == 403 and read_a.json() == lacks("read")
    run_b = call(api_client, "post", f"/api/v1/run/{prompting_flow.pk}", key, {"input_value": "x"}, REMOTE_ADDR=HOME)
    assert run_b.status_code == 404 and run_b.json() == NOT_FOUND
    from_elsewhere = call(api_client, "post", f"/api/v1/run/{echo_flow.pk}", key, {"input_value": "x"},
                          REMOTE_ADDR=ELSEWHERE)
    assert from_elsewhere.status_code == 403 and from_elsewhere.json() == ADDRESS_REFUSED
    run_a = call(api_client, "post", f"/api/v1/run/{echo_flow.pk}", key, {"input_value": "x"}, REMOTE_ADDR=HOME)
    assert run_a.status_code == 200
    assert run_a.json()["outputs"][0]["outputs"][0]["results"]["message"]["text"] == "x"


@pytest.mark.parametrize(("name", "method", "url", "body", "needed"), FLOW_ROUTES, ids=ROUTE_IDS)
def test_an_ip_limited_key_is_refused_from_elsewhere_on_every_route_and_the_refusal_is_audited(
        api_client, echo_flow, scoped_key, name, method, url, body, needed):
    key = scoped_key(allowed_ips=["203.0.113.0/24", "2001:db8::/32"])
    api_key = ApiKey.objects.get()
    response = call(api_client, method, url.format(flow=echo_flow.pk), key, body, REMOTE_ADDR=ELSEWHERE)
    assert response.status_code == 403 and response.json() == ADDRESS_REFUSED
    assert "203.0.113" not in response.content.decode()
    event = ApiKeyEvent.objects.get(kind=ApiKeyEvent.Kind.AUTH_FAILED)
    assert (event.api_key, event.lookup_id, event.client_ip, event.data) == (
        api_key, api_key.lookup_id, ELSEWHERE, {"reason": "address_not_allowed"})
    assert Flow.objects.get(pk=echo_flow.pk).name == "Echo"
    api_key.refresh_from_db()
    assert api_key.total_uses == 0
    assert call(api_client, method, url.format(flow=echo_flow.pk), key, body,
                REMOTE_ADDR="2001:db8::42").status_code == 200


def test_the_flow_list_and_creation_refuse_an_ip_limited_key_from_elsewhere(api_client, scoped_key):
    key = scoped_key(allowed_ips=[HOME])
    for method, url in (("get", "/api/v1/flows/"), ("post", "/api/v1/flows/"), ("post", "/api/v1/flows/upload/")):
        response = call(api_client, method, url, key, {"name": "x"}, REMOTE_ADDR=ELSEWHERE)
        assert response.json() == ADDRESS_REFUSED
    assert not Flow.objects.exists()


def test_behind_a_trusted_proxy_the_forwarded_client_counts_and_from_anyone_else_the_header_is_ignored(
        api_client, echo_flow, scoped_key, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.2"]
    key = scoped_key(allowed_ips=[HOME])
    via_proxy = call(api_client, "get", "/api/v1/flows/", key, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=HOME)
    assert via_proxy.status_code == 200
    spoofed = call(api_client, "get", "/api/v1/flows/", key, REMOTE_ADDR=ELSEWHERE, HTTP_X_FORWARDED_FOR=HOME)
    assert spoofed.json() == ADDRESS_REFUSED
    client_behind_proxy = call(api_client, "get", "/api/v1/flows/", key, REMOTE_ADDR="10.0.0.2",
                               HTTP_X_FORWARDED_FOR=f"{HOME}, {ELSEWHERE}")
    assert client_behind_proxy.json() == ADDRESS_REFUSED  # the proxy saw ELSEWHERE; HOME was the client's claim


def test_refused_addresses_count_toward_the_failed_authentication_throttle(api_client, echo_flow, scoped_key,
                                                                           settings):
    settings.API_KEY_FAILED_AUTH_RATE = "2/min"
    key = scoped_key(allowed_ips=[HOME])
    for _ in range(2):
        assert call(api_client, "get", "/api/v1/flows/", key, REMOTE_ADDR=ELSEWHERE).status_code == 403
    throttled = call(api_client, "get", "/api/v1/flows/", key, REMOTE_ADDR=ELSEWHERE)
    assert throttled.status_code == 429 and "Retry-After" in throttled
    assert call(api_client, "get", "/api/v1/flows/", key, REMOTE_ADDR=HOME).status_code == 200


def test_a_key_whose_flows_were_all_deleted_reaches_no_flow_at_all(api_client, user, echo_flow, prompting_flow,
                                                                     scoped_key):
    key = scoped_key([echo_flow])
    assert call(api_client, "delete", f"/api/v1/flows/{echo_flow.pk}", key).status_code == 200
    assert ApiKey.objects.get().flow_ids == []
    assert call(api_client, "get", "/api/v1/flows/", key).json() == []
    assert call(api_client, "get", f"/api/v1/flows/{prompting_flow.pk}", key).json() == NOT_FOUND
    assert call(api_client, "post", f"/api/v1/run/{prompting_flow.pk}", key, {}).json() == NOT_FOUND


def test_a_deleted_flow_recreated_under_its_old_id_is_not_in_the_scope_any_more(api_client, user, echo_flow,
                                                                                scoped_key):
    scoped = scoped_key([echo_flow])
    full = scoped_key()
    flow_id, data = str(echo_flow.pk), echo_flow.data
    call(api_client, "delete", f"/api/v1/flows/{flow_id}", full)
    recreated = call(api_client, "put", f"/api/v1/flows/{flow_id}", full, {"name": "Echo again", "data": data})
    assert recreated.status_code == 201
    assert call(api_client, "get", f"/api/v1/flows/{flow_id}", scoped).json() == NOT_FOUND


def test_a_session_keeps_every_right(api_client, user, echo_flow):
    api_client.force_login(user)
    assert api_client.get("/api/v1/flows/").status_code == 200
    assert api_client.post("/api/v1/flows/", {"name": "From a session"}, format="json").status_code == 201
    assert api_client.post(f"/api/v1/run/{echo_flow.pk}", {"input_value": "x"}, format="json").status_code == 200
    assert api_client.delete(f"/api/v1/flows/{echo_flow.pk}").status_code == 200


def test_a_scoped_run_only_ip_limited_echo_run_costs_four_queries_and_never_reads_the_graph_column(
        api_client, echo_flow, scoped_key, django_assert_max_num_queries):
    key = scoped_key([echo_flow], permissions=["run"], allowed_ips=["203.0.113.0/24", "2001:db8::/32"])
    call(api_client, "post", f"/api/v1/run/{echo_flow.pk}", key, {"input_value": "warm"}, REMOTE_ADDR=HOME)
    with django_assert_max_num_queries(4) as captured:  # key, use, flow, the run's chat messages
        response = call(api_client, "post", f"/api/v1/run/{echo_flow.pk}", key, {"input_value": "cheap"},
                        REMOTE_ADDR=HOME)
    assert response.status_code == 200
    flow_reads = [q["sql"] for q in captured.captured_queries if "flows_flow" in q["sql"]]
    assert len(flow_reads) == 1 and '"data"' not in flow_reads[0]


def test_refusals_for_permission_and_scope_cost_no_more_than_a_run(api_client, echo_flow, prompting_flow, scoped_key,
                                                                   django_assert_max_num_queries):
    key = scoped_key([echo_flow], permissions=["run"])
    with django_assert_max_num_queries(2):  # the key's SELECT and its use UPDATE: the 403 needs nothing more
        assert call(api_client, "get", f"/api/v1/flows/{echo_flow.pk}", key).status_code == 403
    with django_assert_max_num_queries(3):
        assert call(api_client, "post", f"/api/v1/run/{prompting_flow.pk}", key, {}).status_code == 404
