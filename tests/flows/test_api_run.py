"""Langflow's run endpoints: /api/v1/run/<flow> (plain and streamed) and the older /api/v1/process/<flow>."""

import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from flows import services
from flows.models import Flow

pytestmark = pytest.mark.django_db


def events_of(response) -> list[dict]:
    raw = b"".join(response).decode()
    return [json.loads(block) for block in raw.split("\n\n") if block.strip()]


def post(api_client, url, body, key=None, **extra):
    headers = {"HTTP_X_API_KEY": key} if key else {}
    return api_client.post(url, body, format="json", **headers, **extra)


def test_run_answers_langflows_shape(api_client, echo_flow, key):
    body = {"input_value": "hello", "input_type": "chat", "output_type": "chat", "output_component": "",
            "tweaks": {}, "session_id": "s-1"}
    response = post(api_client, f"/api/v1/run/{echo_flow.pk}?stream=false", body, key)
    assert response.status_code == 200
    answer = response.json()
    assert answer["session_id"] == "s-1"
    [block] = answer["outputs"]
    assert block["inputs"] == {"input_value": "hello"}
    [output] = block["outputs"]
    message = output["results"]["message"]
    assert (message["text"], message["sender"], message["sender_name"], message["session_id"]) == (
        "hello", "Machine", "AI", "s-1")
    assert output["component_id"] == "ChatOutput-yK0AU"
    assert output["messages"][0]["message"] == "hello"


def test_run_by_endpoint_name_and_without_a_session_uses_the_flow_id(api_client, echo_flow, key):
    response = post(api_client, "/api/v1/run/echo", {"input_value": "hi"}, key)
    assert response.json()["session_id"] == str(echo_flow.pk)


def test_an_id_wins_over_an_endpoint_name_that_looks_like_it(api_client, user, echo_flow, key):
    impostor = services.create_flow(owner=user, name="Impostor", endpoint_name=str(echo_flow.pk),
                                    data={"nodes": [], "edges": []})
    response = post(api_client, f"/api/v1/run/{echo_flow.pk}", {"input_value": "hi"}, key)
    assert response.json()["outputs"][0]["outputs"][0]["component_id"] == "ChatOutput-yK0AU"
    assert impostor.endpoint_name == str(echo_flow.pk)


def test_the_key_may_come_in_the_query_string(api_client, echo_flow, key):
    response = post(api_client, f"/api/v1/run/{echo_flow.pk}?x-api-key={key}", {"input_value": "q"})
    assert response.status_code == 200


def test_the_older_body_works_on_run(api_client, echo_flow, key):
    response = post(api_client, f"/api/v1/run/{echo_flow.pk}", {"inputs": {"text": "old style"}, "tweaks": {}}, key)
    assert response.json()["outputs"][0]["outputs"][0]["results"]["message"]["text"] == "old style"


@pytest.mark.parametrize("in_query", [False, True])
def test_process_answers_result_and_session(api_client, echo_flow, key, in_query):
    url = f"/api/v1/process/{echo_flow.pk}" + (f"?x-api-key={key}" if in_query else "")
    response = post(api_client, url, {"inputs": {"text": "legacy"}, "tweaks": {}}, None if in_query else key)
    assert response.status_code == 200
    assert response.json() == {"result": {"text": "legacy", "outputs": {"ChatOutput-yK0AU": "legacy"}},
                               "session_id": str(echo_flow.pk)}


def test_process_applies_tweaks(api_client, echo_flow, key):
    response = post(api_client, f"/api/v1/process/{echo_flow.pk}",
                    {"inputs": {}, "tweaks": {"ChatInput-b6UCc": {"input_value": "tweaked"}}}, key)
    assert response.json()["result"]["text"] == "tweaked"


@pytest.mark.parametrize("url", ["/api/v1/run/", "/api/v1/process/", "/api/v1/run/?x-api-key=lfsk_bad"])
def test_no_flow_id_is_a_json_404_saying_one_is_required(api_client, key, url):
    response = post(api_client, url, {"inputs": {"text": ""}, "tweaks": {}}, key)
    assert response.status_code == 404
    assert "flow id is required" in response.json()["detail"]


def test_a_missing_flow_is_flow_not_found(api_client, key):
    response = post(api_client, "/api/v1/run/nothing-here", {}, key)
    assert response.status_code == 404 and response.json() == {"detail": "Flow not found"}


@pytest.mark.parametrize(("query", "body"), [("?stream=true", {}), ("", {"stream": True})])
def test_streaming_by_query_or_body_sends_langflow_events(api_client, echo_flow, key, query, body):
    response = post(api_client, f"/api/v1/run/{echo_flow.pk}{query}", {"input_value": "streamed", **body}, key)
    assert response.status_code == 200 and response.streaming
    events = events_of(response)
    names = [event["event"] for event in events]
    assert names == ["add_message", "end_vertex", "add_message", "end_vertex", "end"]
    assert events[0]["data"]["text"] == "streamed" and events[0]["data"]["sender"] == "User"
    assert events[0]["data"]["message"]["text"] == "streamed"  # what langflow-sdk's chunk.text reads
    result = events[-1]["data"]["result"]
    assert result["outputs"][0]["outputs"][0]["results"]["message"]["text"] == "streamed"


def test_a_stream_that_cannot_start_is_a_plain_json_error(api_client, echo_flow, key):
    response = post(api_client, f"/api/v1/run/{echo_flow.pk}?stream=true", {"tweaks": {"Nope": {"x": 1}}}, key)
    assert response.status_code == 422 and not response.streaming


def test_an_unknown_stream_value_is_a_422(api_client, echo_flow, key):
    response = post(api_client, f"/api/v1/run/{echo_flow.pk}?stream=perhaps", {}, key)
    assert response.status_code == 422 and "stream" in response.json()["errors"]


def test_a_flow_with_an_unsupported_component_is_stored_but_refused_at_run_naming_it(api_client, user, key, export):
    upload = post(api_client, "/api/v1/flows/upload/", export("meeting_summary.json"), key)
    assert upload.status_code == 201
    flow_id = upload.json()[0]["id"]
    for url in (f"/api/v1/run/{flow_id}", f"/api/v1/run/{flow_id}?stream=true", f"/api/v1/process/{flow_id}"):
        response = post(api_client, url, {"input_value": "hi"}, key)
        assert response.status_code == 422
        detail = response.json()["detail"]
        assert detail == ("This flow uses components this server does not support: "
                          "AssemblyAITranscriber (node AAITranscriber-ms).")
        assert response.json()["node_ids"] == ["AAITranscriber-ms"]


def test_a_cycle_is_a_422_naming_the_nodes(api_client, user, key):
    from tests.flows.graphs import edge, flow_data, prompt

    data = flow_data(prompt("P-1", "{a}", a=""), prompt("P-2", "{b}", b=""),
                     edge("P-1", "prompt", "P-2", "b"), edge("P-2", "prompt", "P-1", "a"))
    flow = services.create_flow(owner=user, name="Loop", data=data)
    response = post(api_client, f"/api/v1/run/{flow.pk}", {"output_type": "debug"}, key)
    assert response.status_code == 422 and "P-1, P-2" in response.json()["detail"]


@pytest.mark.parametrize(("tweaks", "words"), [
    ({"Ghost": {"x": 1}}, "'Ghost' names no node"),
    ({"ChatOutput-yK0AU": {"colour": 1}}, "has no field 'colour'"),
    ({"ChatInput-b6UCc": {"code": "print(1)"}}, "'code' field of node ChatInput-b6UCc"),
])
def test_bad_tweaks_are_a_422_that_says_which(api_client, echo_flow, key, tweaks, words):
    response = post(api_client, f"/api/v1/run/{echo_flow.pk}", {"tweaks": tweaks}, key)
    assert response.status_code == 422 and words in response.json()["detail"]


@pytest.mark.parametrize(("body", "field"), [
    ({"input_value": ["a"]}, "input_value"),
    ({"tweaks": []}, "tweaks"),
    ({"inputs": "text"}, "inputs"),
    ({"output_type": "everything"}, "output_type"),
    ({"input_type": 3}, "input_type"),
    ({"stream": "sometimes"}, "stream"),
    ({"session_id": {"a": 1}}, "session_id"),
])
def test_wrong_types_are_a_422_with_field_errors(api_client, echo_flow, key, body, field):
    response = post(api_client, f"/api/v1/run/{echo_flow.pk}", body, key)
    assert response.status_code == 422 and field in response.json()["errors"]


@pytest.mark.parametrize("raw", ["[1, 2]", '"text"', "5", "null"])
def test_a_body_that_is_not_an_object_is_a_422(api_client, echo_flow, key, raw):
    response = api_client.generic("POST", f"/api/v1/run/{echo_flow.pk}", raw, content_type="application/json",
                                  HTTP_X_API_KEY=key)
    assert response.status_code == 422 and "detail" in response.json()


def test_malformed_json_is_a_400(api_client, echo_flow, key):
    response = api_client.generic("POST", f"/api/v1/run/{echo_flow.pk}", "{'single': quotes}",
                                  content_type="application/json", HTTP_X_API_KEY=key)
    assert response.status_code == 400 and "detail" in response.json()


def test_an_empty_body_runs_with_the_stored_input(api_client, echo_flow, key):
    response = api_client.generic("POST", f"/api/v1/run/{echo_flow.pk}", "", HTTP_X_API_KEY=key)
    assert response.json()["outputs"][0]["outputs"][0]["results"]["message"]["text"] == "Hello"


def test_a_body_above_the_limit_is_a_413(api_client, echo_flow, key, settings):
    settings.FLOW_MAX_BODY_BYTES = 100
    response = post(api_client, f"/api/v1/run/{echo_flow.pk}", {"input_value": "x" * 200}, key)
    assert response.status_code == 413 and "detail" in response.json()


def test_a_json_body_is_read_whatever_content_type_is_declared(api_client, echo_flow, key):
    response = api_client.generic("POST", f"/api/v1/run/{echo_flow.pk}", '{"input_value": "typed"}',
                                  content_type="text/plain", HTTP_X_API_KEY=key)
    assert response.json()["outputs"][0]["outputs"][0]["results"]["message"]["text"] == "typed"


def test_an_echo_run_with_a_key_costs_four_queries_and_never_reads_the_graph_column(
        api_client, echo_flow, key, django_assert_max_num_queries):
    post(api_client, f"/api/v1/run/{echo_flow.pk}", {"input_value": "warm"}, key)  # a first write checks the cap
    # The key, its use, the flow, and one INSERT of the run's chat messages (flows.memory).
    with django_assert_max_num_queries(4) as captured:
        response = post(api_client, f"/api/v1/run/{echo_flow.pk}", {"input_value": "cheap"}, key)
    assert response.status_code == 200
    flow_reads = [q["sql"] for q in captured.captured_queries if "flows_flow" in q["sql"]]
    assert len(flow_reads) == 1 and '"data"' not in flow_reads[0]


def test_a_run_writes_nothing_but_the_key_usage_and_its_chat_messages(api_client, echo_flow, key):
    post(api_client, "/api/v1/run/echo", {"input_value": "warm"}, key)  # a first write checks the cap
    with CaptureQueriesContext(connection) as captured:
        post(api_client, "/api/v1/run/echo", {"input_value": "x"}, key)
    # An executemany is logged as "N times: INSERT ...": the verb is the first word after it.
    statements = [re.sub(r"^\d+ times: ", "", q["sql"].lstrip()) for q in captured.captured_queries]
    writes = [sql for sql in statements if sql.split()[0].upper() in {"INSERT", "UPDATE", "DELETE"}]
    assert len(writes) == 2 and "apikeys_apikey" in writes[0] and "flows_message" in writes[1]


def test_the_graph_is_compiled_once_per_flow_version(api_client, echo_flow, key, monkeypatch):
    compiled = []
    real_compile = services.engine.compile_graph
    monkeypatch.setattr(services.engine, "compile_graph", lambda data: compiled.append(1) or real_compile(data))
    services._graphs().clear()
    for _ in range(3):
        post(api_client, f"/api/v1/run/{echo_flow.pk}", {"input_value": "x"}, key)
    assert len(compiled) == 1
    services.update_flow(echo_flow, description="a new version")  # compiles the new version now
    response = post(api_client, f"/api/v1/run/{echo_flow.pk}", {"input_value": "after edit"}, key)
    assert len(compiled) == 2
    assert response.json()["outputs"][0]["outputs"][0]["results"]["message"]["text"] == "after edit"


def test_a_cold_cache_costs_one_query_for_the_graph_then_none(api_client, echo_flow, key,
                                                                django_assert_num_queries):
    post(api_client, f"/api/v1/run/{echo_flow.pk}", {"input_value": "warm"}, key)  # a first write checks the cap
    services._graphs().clear()
    with django_assert_num_queries(5):  # key, use, flow, its graph, the chat messages' INSERT
        post(api_client, f"/api/v1/run/{echo_flow.pk}", {"input_value": "x"}, key)
    with django_assert_num_queries(4):
        post(api_client, f"/api/v1/run/{echo_flow.pk}", {"input_value": "x"}, key)


def test_an_edited_graph_is_what_runs_next(api_client, echo_flow, key):
    data = echo_flow.data
    data["nodes"][1]["data"]["node"]["template"]["sender_name"]["value"] = "Robot"
    services.update_flow(Flow.objects.get(pk=echo_flow.pk), data=data)
    response = post(api_client, "/api/v1/run/echo", {"input_value": "x"}, key)
    assert response.json()["outputs"][0]["outputs"][0]["results"]["message"]["sender_name"] == "Robot"


@pytest.mark.parametrize("reference", ["%00", "a%00b", "%F0%9F%98%80", "..", "has%20space"])
def test_a_reference_that_can_be_no_id_or_endpoint_name_is_not_found(api_client, echo_flow, key, reference):
    response = post(api_client, f"/api/v1/run/{reference}", {}, key)
    assert response.status_code == 404 and response.json() == {"detail": "Flow not found"}
