"""The flows REST API: Langflow's routes and shapes, scoped to the caller's own flows."""

import io
import json

import pytest

from flows.models import Flow
from tests.flows.graphs import chat_in, chat_out, edge, flow_data

pytestmark = pytest.mark.django_db

FLOWS = "/api/v1/flows/"
NOT_FOUND = {"detail": "Flow not found"}


def detail(flow) -> str:
    return f"/api/v1/flows/{flow.pk}"


def test_creating_a_flow_answers_201_with_langflows_fields(api_client, user, key, export):
    response = api_client.post(FLOWS, export("echo.json"), format="json", HTTP_X_API_KEY=key)
    assert response.status_code == 201
    body = response.json()
    flow = Flow.objects.get(pk=body["id"])
    assert flow.owner == user and flow.endpoint_name == "echo"
    assert body["name"] == "Echo" and body["user_id"] == str(user.pk)
    assert body["data"] == export("echo.json")["data"]
    for field in ("updated_at", "folder_id", "is_component", "tags", "access_type"):
        assert field in body


def test_the_list_is_a_bare_list_of_the_callers_flows_only(api_client, echo_flow, prompting_flow, other_user, key):
    Flow.objects.create(owner=other_user, name="Bob's")
    response = api_client.get(FLOWS, HTTP_X_API_KEY=key)
    assert response.status_code == 200
    assert isinstance(response.json(), list)
    assert {item["name"] for item in response.json()} == {"Echo", "Basic Prompting"}


def test_the_list_accepts_the_sdks_query_parameters_and_pages(api_client, echo_flow, prompting_flow, key):
    query = "?remove_example_flows=false&components_only=false&get_all=false&header_flows=false&page=1&size=1"
    first = api_client.get(FLOWS + query, HTTP_X_API_KEY=key).json()
    second = api_client.get(FLOWS + query.replace("page=1", "page=2"), HTTP_X_API_KEY=key).json()
    assert len(first) == len(second) == 1 and first[0]["id"] != second[0]["id"]


def test_header_flows_leave_the_graph_out(api_client, echo_flow, key):
    [item] = api_client.get(FLOWS + "?header_flows=true", HTTP_X_API_KEY=key).json()
    assert "data" not in item and item["name"] == "Echo"


def test_components_only_and_folders_list_nothing(api_client, echo_flow, key):
    assert api_client.get(FLOWS + "?components_only=true", HTTP_X_API_KEY=key).json() == []


@pytest.mark.parametrize("query", ["?page=0", "?size=abc", "?get_all=maybe", "?folder_id=nope"])
def test_bad_list_parameters_are_a_422(api_client, key, query):
    response = api_client.get(FLOWS + query, HTTP_X_API_KEY=key)
    assert response.status_code == 422 and "detail" in response.json()


def test_get_patch_and_delete_by_id(api_client, echo_flow, key):
    assert api_client.get(detail(echo_flow), HTTP_X_API_KEY=key).json()["name"] == "Echo"
    patched = api_client.patch(detail(echo_flow), {"description": "new words"}, format="json", HTTP_X_API_KEY=key)
    assert patched.status_code == 200 and patched.json()["description"] == "new words"
    assert patched.json()["name"] == "Echo"
    deleted = api_client.delete(detail(echo_flow), HTTP_X_API_KEY=key)
    assert deleted.status_code == 200 and not Flow.objects.filter(pk=echo_flow.pk).exists()


def test_put_creates_a_flow_under_the_given_id_then_replaces_it(api_client, user, key):
    flow_id = "0b0e4a52-6a53-4a49-9df5-3c0b2d7a9d11"
    created = api_client.put(f"{FLOWS}{flow_id}", {"name": "Pushed", "endpoint_name": "pushed"}, format="json",
                             HTTP_X_API_KEY=key)
    assert created.status_code == 201 and created.json()["id"] == flow_id
    replaced = api_client.put(f"{FLOWS}{flow_id}", {"name": "Renamed"}, format="json", HTTP_X_API_KEY=key)
    assert replaced.status_code == 200
    flow = Flow.objects.get(pk=flow_id)
    assert (flow.name, flow.endpoint_name, flow.owner) == ("Renamed", None, user)


def test_put_on_another_users_flow_id_is_a_404_and_changes_nothing(api_client, key, other_user):
    theirs = Flow.objects.create(owner=other_user, name="Theirs")
    response = api_client.put(detail(theirs), {"name": "Mine now"}, format="json", HTTP_X_API_KEY=key)
    assert response.status_code == 404 and response.json() == NOT_FOUND
    theirs.refresh_from_db()
    assert theirs.name == "Theirs" and theirs.owner == other_user


@pytest.mark.parametrize(("method", "suffix", "body"), [
    ("get", "", None), ("patch", "", {"name": "x"}), ("delete", "", None),
    ("post", "run", {"input_value": "x"}), ("post", "process", {"inputs": {"text": "x"}}),
    ("post", "run-endpoint", {}),
])
def test_another_users_flow_answers_exactly_like_a_missing_one(api_client, echo_flow, other_key, method, suffix, body):
    urls = {
        "": (detail(echo_flow), "/api/v1/flows/5d8a0c39-2d53-4a4b-8f35-0a4c8c2f3e70"),
        "run": (f"/api/v1/run/{echo_flow.pk}", "/api/v1/run/5d8a0c39-2d53-4a4b-8f35-0a4c8c2f3e70"),
        "process": (f"/api/v1/process/{echo_flow.pk}", "/api/v1/process/5d8a0c39-2d53-4a4b-8f35-0a4c8c2f3e70"),
        "run-endpoint": ("/api/v1/run/echo", "/api/v1/run/no-such-endpoint"),
    }[suffix]
    answers = [getattr(api_client, method)(url, body, format="json", HTTP_X_API_KEY=other_key) for url in urls]
    assert [a.status_code for a in answers] == [404, 404]
    assert answers[0].json() == answers[1].json() == NOT_FOUND
    assert Flow.objects.get(pk=echo_flow.pk).name == "Echo"


def test_a_flow_id_that_is_not_a_uuid_is_not_found(api_client, key):
    assert api_client.get(f"{FLOWS}not-a-uuid", HTTP_X_API_KEY=key).json() == NOT_FOUND


@pytest.mark.parametrize("url", [FLOWS, "/api/v1/flows/upload/", "/api/v1/run/echo", "/api/v1/process/echo"])
def test_no_credentials_is_the_langflow_403(api_client, echo_flow, url):
    response = api_client.post(url, {}, format="json")
    assert response.status_code == 403
    assert response.json() == {"detail": "An API key must be passed as query or header"}


def test_a_session_works_too(api_client, user, echo_flow):
    api_client.force_login(user)
    assert api_client.get(FLOWS).json()[0]["name"] == "Echo"


@pytest.mark.parametrize(("body", "field"), [
    ({"name": ""}, "name"),
    ({}, "name"),
    ({"name": ["x"]}, "name"),
    ({"name": "x", "endpoint_name": "has space"}, "endpoint_name"),
    ({"name": "x", "data": "nodes"}, "data"),
    ({"name": "x", "data": {"nodes": [{"id": "a", "data": {"type": "ChatInput"}}], "edges": []}}, "data"),
    ({"name": "x", "data": {"nodes": [], "edges": [{"source": "a"}]}}, "data"),
])
def test_bad_fields_are_a_422_naming_the_field(api_client, key, body, field):
    response = api_client.post(FLOWS, body, format="json", HTTP_X_API_KEY=key)
    assert response.status_code == 422
    assert field in response.json()["errors"]


def test_names_and_endpoint_names_are_unique_per_owner_only(api_client, echo_flow, key, other_key):
    same_name = api_client.post(FLOWS, {"name": "Echo"}, format="json", HTTP_X_API_KEY=key)
    same_endpoint = api_client.post(FLOWS, {"name": "Other", "endpoint_name": "echo"}, format="json",
                                    HTTP_X_API_KEY=key)
    assert same_name.status_code == same_endpoint.status_code == 422
    assert "already have a flow named 'Echo'" in same_name.json()["detail"]
    assert "endpoint_name" in same_endpoint.json()["errors"]
    theirs = api_client.post(FLOWS, {"name": "Echo", "endpoint_name": "echo"}, format="json", HTTP_X_API_KEY=other_key)
    assert theirs.status_code == 201


def test_data_may_be_left_out_and_is_then_an_empty_graph(api_client, key):
    response = api_client.post(FLOWS, {"name": "Empty", "data": None}, format="json", HTTP_X_API_KEY=key)
    assert response.status_code == 201 and response.json()["data"] == {"nodes": [], "edges": []}


def test_malformed_json_is_a_400(api_client, key):
    response = api_client.generic("POST", FLOWS, '{"name": ', content_type="application/json", HTTP_X_API_KEY=key)
    assert response.status_code == 400 and "not valid JSON" in response.json()["detail"]


@pytest.mark.parametrize("raw", ['{"name": "x", "data": {"nodes": [], "edges": [], "n": NaN}}',
                                 '{"name": "nul\\u0000"}', '{"name": "x", "description": "\\ud800"}',
                                 "[" * 50000 + "]" * 50000])
def test_json_that_cannot_be_stored_is_a_400_not_a_500(api_client, key, raw):
    response = api_client.generic("POST", FLOWS, raw, content_type="application/json", HTTP_X_API_KEY=key)
    assert response.status_code == 400 and "detail" in response.json()


def test_a_body_above_the_limit_is_a_413(api_client, key, settings):
    settings.FLOW_MAX_BODY_BYTES = 1000
    body = {"name": "big", "description": "x" * 2000}
    response = api_client.post(FLOWS, body, format="json", HTTP_X_API_KEY=key)
    assert response.status_code == 413 and "1000 bytes" in response.json()["detail"]
    assert not Flow.objects.exists()


def test_upload_takes_a_langflow_export_file(api_client, key, export):
    upload = io.BytesIO(json.dumps(export("basic_prompting.json")).encode())
    upload.name = "basic_prompting.json"
    response = api_client.post("/api/v1/flows/upload/", {"file": upload}, format="multipart", HTTP_X_API_KEY=key)
    assert response.status_code == 201
    [flow] = response.json()
    assert flow["name"] == "Basic Prompting" and flow["id"] != export("basic_prompting.json")["id"]


def test_upload_takes_a_list_in_the_body_and_renames_clashes(api_client, echo_flow, key, export):
    response = api_client.post("/api/v1/flows/upload/", [export("echo.json"), export("simple_agent.json")],
                               format="json", HTTP_X_API_KEY=key)
    assert response.status_code == 201
    assert [(f["name"], f["endpoint_name"]) for f in response.json()] == [("Echo (1)", "echo-1"),
                                                                         ("Simple Agent", None)]


def test_upload_of_a_bad_file_stores_nothing(api_client, key, export):
    bad = {"name": "Broken", "data": {"nodes": "oops", "edges": []}}
    response = api_client.post("/api/v1/flows/upload/", [export("echo.json"), bad], format="json", HTTP_X_API_KEY=key)
    assert response.status_code == 422 and "Broken" in response.json()["detail"]
    assert not Flow.objects.exists()


def test_upload_without_a_file_field_is_a_422(api_client, key):
    response = api_client.post("/api/v1/flows/upload/", {"other": "x"}, format="multipart", HTTP_X_API_KEY=key)
    assert response.status_code == 422 and "file" in response.json()["errors"]


def test_upload_of_a_file_that_is_not_json_is_a_422(api_client, key):
    upload = io.BytesIO(b"\xff\xfe not json")
    upload.name = "flow.json"
    response = api_client.post("/api/v1/flows/upload/", {"file": upload}, format="multipart", HTTP_X_API_KEY=key)
    assert response.status_code == 422 and "not valid JSON" in response.json()["detail"]


def test_a_stored_flow_that_cannot_run_is_still_listed_and_editable(api_client, key, export):
    response = api_client.post(FLOWS, export("meeting_summary.json"), format="json", HTTP_X_API_KEY=key)
    assert response.status_code == 201
    data = flow_data(chat_in(), chat_out(), edge("ChatInput-1", "message", "ChatOutput-1", "input_value"))
    patched = api_client.patch(f"{FLOWS}{response.json()['id']}", {"data": data}, format="json", HTTP_X_API_KEY=key)
    assert patched.status_code == 200
    ran = api_client.post(f"/api/v1/run/{response.json()['id']}", {"input_value": "now"}, format="json",
                          HTTP_X_API_KEY=key)
    assert ran.status_code == 200


def test_a_list_whose_flows_add_up_past_the_answer_limit_is_refused_before_it_is_read(api_client, user, key,
                                                                                       settings):
    """Many large flows must not make one small request build a huge answer: ask for pages or headers."""
    from flows import services
    from tests.flows.graphs import chat_in, flow_data

    settings.FLOW_MAX_ANSWER_BYTES = 3000
    for number in range(3):
        data = flow_data(chat_in())
        data["nodes"][0]["data"]["node"]["description"] = "x" * 1500
        services.create_flow(owner=user, name=f"Large {number}", data=data)
    refused = api_client.get("/api/v1/flows/", HTTP_X_API_KEY=key)
    assert refused.status_code == 422
    assert "FLOW_MAX_ANSWER_BYTES" in refused.json()["detail"] and "header_flows=true" in refused.json()["detail"]
    headers = api_client.get("/api/v1/flows/?header_flows=true", HTTP_X_API_KEY=key)
    assert headers.status_code == 200 and len(headers.json()) == 3
    one_page = api_client.get("/api/v1/flows/?get_all=false&page=1&size=1", HTTP_X_API_KEY=key)
    assert one_page.status_code == 200 and len(one_page.json()) == 1
