"""Real clients against a live server: langflow-sdk unchanged, and the API-key page's snippets."""


import pytest
import requests
from langflow_sdk import Client
from langflow_sdk.exceptions import LangflowNotFoundError, LangflowValidationError
from langflow_sdk.models import FlowCreate, FlowUpdate

pytestmark = pytest.mark.django_db(transaction=True)


def test_langflow_sdk_creates_lists_gets_updates_runs_streams_and_deletes(live_server, key, export):
    echo = export("echo.json")
    with Client(live_server.url, api_key=key) as client:
        created = client.create_flow(FlowCreate(name="SDK echo", data=echo["data"], endpoint_name="sdk-echo"))
        assert created.name == "SDK echo" and created.endpoint_name == "sdk-echo"

        assert [flow.id for flow in client.list_flows()] == [created.id]
        assert client.get_flow(created.id).data == echo["data"]

        updated = client.update_flow(created.id, FlowUpdate(description="via the SDK"))
        assert updated.description == "via the SDK"

        assert client.run(created.id, input_value="hello sdk").first_text_output() == "hello sdk"
        assert client.run("sdk-echo", input_value="by endpoint").first_text_output() == "by endpoint"

        chunks = list(client.stream(created.id, input_value="streamed"))
        assert [chunk.text for chunk in chunks if chunk.event == "add_message"] == ["streamed", "streamed"]
        assert chunks[-1].is_end and chunks[-1].final_response().first_text_output() == "streamed"

        flow_id = "3f1c9a55-0f6e-4d7e-9d6b-0a9f2f0c1a11"
        pushed, was_created = client.upsert_flow(flow_id, FlowCreate(name="Pushed", data=echo["data"]))
        assert was_created and str(pushed.id) == flow_id
        _, was_created = client.upsert_flow(flow_id, FlowCreate(name="Pushed again", data=echo["data"]))
        assert not was_created

        client.delete_flow(created.id)
        with pytest.raises(LangflowNotFoundError):
            client.get_flow(created.id)


def test_langflow_sdk_streams_model_tokens(live_server, key, prompting_flow, model_server):
    with Client(live_server.url, api_key=key) as client:
        chunks = list(client.stream(prompting_flow.pk, input_value="hi"))
    assert "".join(chunk.text for chunk in chunks if chunk.is_token) == "Hello from the model"
    assert chunks[-1].final_response().first_text_output() == "Hello from the model"


def test_langflow_sdk_sees_another_users_flow_as_missing(live_server, echo_flow, other_key):
    with Client(live_server.url, api_key=other_key) as client:
        assert client.list_flows() == []
        for call in (lambda: client.get_flow(echo_flow.pk), lambda: client.run(echo_flow.pk, input_value="x"),
                     lambda: client.update_flow(echo_flow.pk, FlowUpdate(name="stolen")),
                     lambda: client.delete_flow(echo_flow.pk), lambda: list(client.stream("echo"))):
            with pytest.raises(LangflowNotFoundError):
                call()


def test_langflow_sdk_gets_a_validation_error_for_an_unsupported_flow(live_server, key, export):
    with Client(live_server.url, api_key=key) as client:
        flow = client.create_flow(FlowCreate(name="Meeting", data=export("meeting_summary.json")["data"]))
        with pytest.raises(LangflowValidationError, match="AAITranscriber-ms"):
            client.run(flow.id, input_value="hi")


# The two snippets of Langflow's API-key page, as printed there but for the base URL.

def run_flow_with_header(base_api_url, inputs: dict, flow_id: str, tweaks: dict | None = None,
                         apiKey: str | None = None) -> dict:
    api_url = f"{base_api_url}/{flow_id}"
    payload = {"inputs": inputs}
    headers = {}
    if tweaks:
        payload["tweaks"] = tweaks
    if apiKey:
        headers = {"x-api-key": apiKey}
    response = requests.post(api_url, json=payload, headers=headers)
    return response.json()


def run_flow_with_query(base_api_url, inputs: dict, flow_id: str, tweaks: dict | None = None,
                        apiKey: str | None = None) -> dict:
    api_url = f"{base_api_url}/{flow_id}"
    payload = {"inputs": inputs}
    headers = {}
    if tweaks:
        payload["tweaks"] = tweaks
    if apiKey:
        api_url += f"?x-api-key={apiKey}"
    response = requests.post(api_url, json=payload, headers=headers)
    return response.json()


@pytest.mark.parametrize("snippet", [run_flow_with_header, run_flow_with_query])
def test_the_api_key_pages_snippets_return_the_flows_output(live_server, echo_flow, key, snippet):
    base = f"{live_server.url}/api/v1/process"
    answer = snippet(base, {"text": "from the docs"}, flow_id=str(echo_flow.pk), tweaks={}, apiKey=key)
    assert answer["result"]["text"] == "from the docs"
    tweaked = snippet(base, {"text": ""}, flow_id=str(echo_flow.pk),
                      tweaks={"ChatInput-b6UCc": {"input_value": "tweaked"}}, apiKey=key)
    assert tweaked["result"]["text"] == "tweaked"


@pytest.mark.parametrize("snippet", [run_flow_with_header, run_flow_with_query])
def test_the_snippets_with_another_users_key_get_flow_not_found(live_server, echo_flow, other_key, snippet):
    answer = snippet(f"{live_server.url}/api/v1/process", {"text": "x"}, flow_id=str(echo_flow.pk), apiKey=other_key)
    assert answer == {"detail": "Flow not found"}


def test_curl_style_streaming_with_the_query_parameter(live_server, echo_flow, key):
    with requests.post(f"{live_server.url}/api/v1/run/echo?stream=true", json={"input_value": "curl"},
                       headers={"x-api-key": key}, stream=True, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert b'"event": "end"' in lines[-1]
