"""basic_prompting.json end to end against a real OpenAI-compatible server on loopback."""

import json
import logging

import pytest

from tests.flows.conftest import closed_port

pytestmark = pytest.mark.django_db

NODE = "LanguageModelComponent-FLeYF"
PROMPT = "Answer the user as if you were a GenAI expert, enthusiastic about helping them get started building something fresh."


def run(api_client, flow, key, body, query=""):
    return api_client.post(f"/api/v1/run/{flow.pk}{query}", body, format="json", HTTP_X_API_KEY=key)


def events_of(response) -> list[dict]:
    raw = b"".join(response).decode()
    return [json.loads(block) for block in raw.split("\n\n") if block.strip()]


def test_the_model_gets_the_prompt_as_system_message_and_the_input_as_user_message(
        api_client, prompting_flow, key, model_server):
    response = run(api_client, prompting_flow, key, {"input_value": "How do I start?"})
    assert response.status_code == 200
    assert response.json()["outputs"][0]["outputs"][0]["results"]["message"]["text"] == "Hello from the model"
    sent = model_server.last
    assert sent["path"] == "/v1/chat/completions"
    assert sent["json"]["messages"] == [
        {"role": "system", "content": PROMPT},
        {"role": "user", "content": "How do I start?"},
    ]
    assert sent["json"]["model"] == "test-model"
    assert sent["json"]["temperature"] == 0.1
    assert sent["json"]["stream"] is False
    assert sent["headers"]["Authorization"] == "Bearer server-side-key"


def test_the_chat_inputs_stored_value_is_sent_when_the_request_has_none(api_client, prompting_flow, key, model_server):
    assert run(api_client, prompting_flow, key, {}).status_code == 200
    assert model_server.last["json"]["messages"][1] == {"role": "user", "content": "Hello"}


def test_tweaks_choose_the_model_and_key_and_fill_the_prompt(api_client, prompting_flow, key, model_server):
    tweaks = {
        NODE: {"model_name": "gpt-x", "api_key": "flow-key", "temperature": 0.7, "max_tokens": 42},
        "Prompt-t2oaK": {"template": "Be {tone}.", "tone": "brief"},
    }
    assert run(api_client, prompting_flow, key, {"input_value": "hi", "tweaks": tweaks}).status_code == 200
    sent = model_server.last
    assert sent["json"]["model"] == "gpt-x"
    assert sent["json"]["temperature"] == 0.7 and sent["json"]["max_tokens"] == 42
    assert sent["json"]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["headers"]["Authorization"] == "Bearer flow-key"


def test_the_servers_key_never_goes_to_a_base_url_chosen_by_a_tweak(
        api_client, prompting_flow, key, model_server, second_model_server):
    tweaks = {NODE: {"base_url": second_model_server.base_url}}
    assert run(api_client, prompting_flow, key, {"input_value": "hi", "tweaks": tweaks}).status_code == 200
    assert model_server.requests == []
    assert "Authorization" not in second_model_server.last["headers"]


def test_a_base_url_that_is_not_http_is_refused(api_client, prompting_flow, key, model_server):
    tweaks = {NODE: {"base_url": "file:///etc/passwd"}}
    response = run(api_client, prompting_flow, key, {"input_value": "hi", "tweaks": tweaks})
    assert response.status_code == 422
    assert NODE in response.json()["detail"] and "base_url" in response.json()["detail"]
    assert model_server.requests == []


def test_openai_model_nodes_call_their_openai_api_base(api_client, user, key, second_model_server, export):
    flow_data = export("basic_prompting.json")
    for node in flow_data["data"]["nodes"]:
        if node["id"] == NODE:
            node["data"]["type"] = "OpenAIModel"
            node["data"]["node"]["template"]["openai_api_base"] = {"type": "str", "value": second_model_server.base_url}
            node["data"]["node"]["template"]["model_name"] = {"type": "str", "value": "gpt-4o"}
    from flows.services import import_flows

    [flow] = import_flows(user=user, payload=flow_data)
    response = run(api_client, flow, key, {"input_value": "hi"})
    assert response.status_code == 200
    assert second_model_server.last["json"]["model"] == "gpt-4o"


@pytest.mark.parametrize("value", ["hot", 7, [1]])
def test_a_bad_temperature_is_a_422_naming_the_node_and_field(api_client, prompting_flow, key, model_server, value):
    response = run(api_client, prompting_flow, key, {"tweaks": {NODE: {"temperature": value}}})
    assert response.status_code == 422
    assert NODE in response.json()["detail"] and "temperature" in response.json()["detail"]
    assert model_server.requests == []


def test_a_provider_other_than_openai_is_refused(api_client, prompting_flow, key, model_server):
    response = run(api_client, prompting_flow, key, {"tweaks": {NODE: {"provider": "Anthropic"}}})
    assert response.status_code == 422
    assert "Anthropic" in response.json()["detail"]


def test_streaming_sends_each_token_then_the_full_message_then_the_result(api_client, prompting_flow, key, model_server):
    response = run(api_client, prompting_flow, key, {"input_value": "hi"}, query="?stream=true")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    events = events_of(response)
    assert model_server.last["json"]["stream"] is True
    tokens = [event["data"]["chunk"] for event in events if event["event"] == "token"]
    assert tokens == model_server.tokens
    messages = [event["data"]["text"] for event in events if event["event"] == "add_message"]
    assert messages == ["hi", "Hello from the model"]
    assert events[-1]["event"] == "end"
    result = events[-1]["data"]["result"]
    assert result["outputs"][0]["outputs"][0]["results"]["message"]["text"] == "Hello from the model"
    token_index = next(i for i, event in enumerate(events) if event["event"] == "token")
    last_message_index = max(i for i, event in enumerate(events) if event["event"] == "add_message")
    assert token_index < last_message_index


@pytest.mark.parametrize(("mode", "reason"), [
    ("500", "answered HTTP 500"),
    ("401", "answered HTTP 401"),
    ("garbage", "could not be read"),
])
def test_a_failing_model_server_is_a_502_naming_the_node(api_client, prompting_flow, key, model_server, mode, reason,
                                                         caplog):
    model_server.mode = mode
    with caplog.at_level(logging.WARNING):
        response = run(api_client, prompting_flow, key, {"input_value": "hi"})
    assert response.status_code == 502
    detail = response.json()["detail"]
    assert NODE in detail and reason in detail
    assert "sk-secret-upstream" not in response.content.decode()  # the upstream body stays in the log
    assert "Traceback" not in response.content.decode()


def test_a_refused_connection_is_a_502(api_client, prompting_flow, key, settings):
    settings.OPENAI_BASE_URL = f"http://127.0.0.1:{closed_port()}/v1"
    response = run(api_client, prompting_flow, key, {"input_value": "hi"})
    assert response.status_code == 502
    assert response.json()["detail"] == f"Model call failed in node {NODE}: could not connect to the model server"


def test_a_model_server_that_hangs_is_a_502_after_the_timeout(api_client, prompting_flow, key, model_server, settings):
    model_server.mode = "hang"
    settings.OPENAI_TIMEOUT = 0.3
    response = run(api_client, prompting_flow, key, {"input_value": "hi"})
    assert response.status_code == 502
    assert "did not answer within 0.3 s" in response.json()["detail"]


def test_a_node_timeout_cannot_exceed_the_servers_limit(api_client, prompting_flow, key, model_server, settings):
    model_server.mode = "hang"
    settings.OPENAI_TIMEOUT = 0.3
    response = run(api_client, prompting_flow, key, {"tweaks": {NODE: {"timeout": 600}}})
    assert response.status_code == 502 and "0.3 s" in response.json()["detail"]


def test_a_model_failure_while_streaming_is_an_error_event(api_client, prompting_flow, key, model_server):
    model_server.mode = "500"
    response = run(api_client, prompting_flow, key, {"input_value": "hi", "stream": True})
    events = events_of(response)
    assert events[-1]["event"] == "error"
    assert NODE in events[-1]["data"]["error"]
    assert not any(event["event"] == "end" for event in events)


def test_a_model_output_that_no_supported_component_reads_is_refused(api_client, user, key, export):
    flow_data = export("basic_prompting.json")
    edge = next(e for e in flow_data["data"]["edges"] if e["source"] == NODE)
    edge["data"]["sourceHandle"]["name"] = "model_output"
    from flows.services import import_flows

    [flow] = import_flows(user=user, payload=flow_data)
    response = run(api_client, flow, key, {})
    assert response.status_code == 422
    assert "model_output" in response.json()["detail"] and NODE in response.json()["node_ids"]
