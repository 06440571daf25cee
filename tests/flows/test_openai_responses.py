"""POST /api/v1/responses: OpenAI's Responses API over a flow, spoken to by the official ``openai`` package."""

import json

import openai
import pytest
from openai import OpenAI

from apikeys.access import KeyAccess
from apikeys.models import ApiKeyEvent
from apikeys.services import revoke_api_key
from flows import services
from flows.models import Message
from flows.openai_responses import response_id, session_of
from tests.flows.conftest import load_fixture

pytestmark = pytest.mark.django_db(transaction=True)

RESPONSES = "/api/v1/responses"


def client_for(live_server, key, **kwargs) -> OpenAI:
    return OpenAI(base_url=f"{live_server.url}/api/v1", api_key=key, max_retries=0, timeout=20, **kwargs)


# --- The official client, plain and streamed ---------------------------------------------------

def test_the_openai_client_runs_a_flow_by_id_with_a_bearer_key(live_server, key, echo_flow):
    response = client_for(live_server, key).responses.create(model=str(echo_flow.pk), input="hello responses")
    assert response.object == "response" and response.status == "completed"
    assert response.output_text == "hello responses"
    assert response.model == str(echo_flow.pk)
    assert response.id.startswith("resp_")
    [message] = response.output
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "output_text" and message.content[0].annotations == []


def test_the_openai_client_with_the_key_in_x_api_key_runs_a_flow_by_endpoint_name(live_server, key, user):
    [flow] = services.import_flows(user=user, payload={**load_fixture("echo.json"), "endpoint_name": "echo"})
    client = client_for(live_server, "unused", default_headers={"x-api-key": key})  # x-api-key wins
    assert client.responses.create(model="echo", input="by name").output_text == "by name"
    assert flow.endpoint_name == "echo"


def test_the_openai_client_streams_the_models_tokens_as_openai_events(live_server, key, prompting_flow,
                                                                      model_server):
    stream = client_for(live_server, key).responses.create(model=str(prompting_flow.pk), input="hi", stream=True)
    events = list(stream)
    kinds = [event.type for event in events]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    deltas = [event.delta for event in events if event.type == "response.output_text.delta"]
    assert deltas == model_server.tokens  # each model token as it came
    assert [event.sequence_number for event in events] == list(range(len(events)))
    done = next(event for event in events if event.type == "response.output_text.done")
    assert done.text == "".join(deltas) == "Hello from the model"
    completed = events[-1].response
    assert completed.status == "completed" and completed.output_text == "Hello from the model"
    assert completed.id == events[0].response.id
    assert model_server.last["json"]["stream"] is True


def test_a_flow_without_a_streaming_model_streams_its_answer_as_one_delta(live_server, key, echo_flow):
    with client_for(live_server, key).responses.stream(model=str(echo_flow.pk), input="no model here") as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert deltas == ["no model here"]
    assert final.output_text == "no model here"


def test_input_items_give_the_flow_the_last_user_message(live_server, key, echo_flow):
    response = client_for(live_server, key).responses.create(model=str(echo_flow.pk), input=[
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "an earlier turn"},
        {"role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "the"},
                                                       {"type": "input_text", "text": "question"}]},
    ])
    assert response.output_text == "the\nquestion"


# --- Conversations: previous_response_id is the flow's chat memory ----------------------------

def test_previous_response_id_continues_the_flows_session(live_server, key, echo_flow):
    client = client_for(live_server, key)
    first = client.responses.create(model=str(echo_flow.pk), input="first")
    second = client.responses.create(model=str(echo_flow.pk), input="second", previous_response_id=first.id)
    other = client.responses.create(model=str(echo_flow.pk), input="elsewhere")
    assert second.previous_response_id == first.id and second.id != first.id
    session = session_of(first.id)
    assert session_of(second.id) == session != session_of(other.id)
    texts = list(Message.objects.filter(flow=echo_flow, session_id=session).values_list("text", flat=True))
    assert texts == ["first", "first", "second", "second"]  # question and answer of each turn


def test_the_agent_reads_the_earlier_turn_from_memory(live_server, key, user, model_server, settings):
    settings.WEB_SEARCH_URL = "http://127.0.0.1:9/search"  # its web search tool is offered, never called
    [agent] = services.import_flows(user=user, payload=load_fixture("simple_agent.json"))
    client = client_for(live_server, key)
    first = client.responses.create(model=str(agent.pk), input="My name is Ada.")
    assert first.output_text == "Hello from the model"
    client.responses.create(model=str(agent.pk), input="What is my name?", previous_response_id=first.id)
    sent = json.dumps(model_server.last["json"]["messages"])
    assert "My name is Ada." in sent and "What is my name?" in sent


def test_a_session_started_on_run_continues_here_by_its_id(live_server, key, echo_flow, api_client):
    api_client.post(f"/api/v1/run/{echo_flow.pk}", {"input_value": "on run", "session_id": "chat-42"},
                    format="json", HTTP_X_API_KEY=key)
    client_for(live_server, key).responses.create(model=str(echo_flow.pk), input="here",
                                                  previous_response_id="chat-42")
    texts = list(Message.objects.filter(flow=echo_flow, session_id="chat-42").values_list("text", flat=True))
    assert texts == ["on run", "on run", "here", "here"]


def test_conversation_names_the_session(live_server, key, echo_flow):
    response = client_for(live_server, key).responses.create(model=str(echo_flow.pk), input="hi",
                                                             conversation="conv-7")
    assert response.conversation.id == "conv-7"
    assert Message.objects.filter(flow=echo_flow, session_id="conv-7").count() == 2


@pytest.mark.parametrize("session", ["a", "chat-42", "é/ü?&=" * 40, "x" * 255])
def test_a_response_id_names_its_session(session):
    ids = {response_id(session) for _ in range(3)}
    assert len(ids) == 3  # unique per response
    assert {session_of(one) for one in ids} == {session}


# --- Errors in OpenAI's shape, with its statuses ----------------------------------------------

def test_a_wrong_key_is_an_authentication_error(live_server, echo_flow):
    with pytest.raises(openai.AuthenticationError) as caught:
        client_for(live_server, "lfsk_wrong").responses.create(model=str(echo_flow.pk), input="x")
    assert caught.value.status_code == 401
    assert caught.value.body == {"message": "Invalid or missing API key", "type": "invalid_request_error",
                                 "param": None, "code": "invalid_api_key"}


def test_another_users_flow_is_model_not_found(live_server, other_key, echo_flow):
    with pytest.raises(openai.NotFoundError) as caught:
        client_for(live_server, other_key).responses.create(model=str(echo_flow.pk), input="x")
    assert caught.value.body["code"] == "model_not_found" and caught.value.body["param"] == "model"


def test_a_key_without_run_is_a_permission_error(live_server, user, make_key, echo_flow):
    _, raw = make_key(user, access=KeyAccess(permissions=("read",)))
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client_for(live_server, raw).responses.create(model=str(echo_flow.pk), input="x")
    assert "'run' permission" in caught.value.body["message"]


def test_a_key_limited_to_other_flows_does_not_reach_this_one(live_server, user, make_key, echo_flow, export):
    [other] = services.import_flows(user=user, payload=export("echo.json"))
    _, raw = make_key(user, access=KeyAccess(all_flows=False, flow_ids=(str(other.pk),), permissions=("run",)))
    client = client_for(live_server, raw)
    assert client.responses.create(model=str(other.pk), input="mine").output_text == "mine"
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model=str(echo_flow.pk), input="not mine")


def test_each_response_counts_as_a_use_of_the_key(live_server, user, make_key, echo_flow):
    api_key, raw = make_key(user)
    client = client_for(live_server, raw)
    for _ in range(2):
        client.responses.create(model=str(echo_flow.pk), input="x")
    api_key.refresh_from_db()
    assert api_key.total_uses == 2


def test_a_keys_rate_limit_applies(live_server, user, make_key, echo_flow):
    _, raw = make_key(user, rate_limit="2/min")
    client = client_for(live_server, raw)
    for _ in range(2):
        client.responses.create(model=str(echo_flow.pk), input="x")
    with pytest.raises(openai.RateLimitError) as caught:
        client.responses.create(model=str(echo_flow.pk), input="x")
    assert caught.value.body["code"] == "rate_limit_exceeded"
    assert int(caught.value.response.headers["Retry-After"]) > 0


@pytest.mark.parametrize(("body", "param", "words"), [
    ({"input": "x"}, "model", "required"),
    ({"model": "m"}, "input", "required"),
    ({"model": "m", "input": 5}, "input", "text or a list"),
    ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]},
     "input", "only text parts"),
    ({"model": "m", "input": [{"type": "function_call_output", "call_id": "c", "output": "x"}]}, "input",
     "only messages"),
    ({"model": "m", "input": [{"role": "assistant", "content": "no question"}]}, "input", "no user message"),
    ({"model": "m", "input": "x", "tools": [{"type": "function", "name": "f"}]}, "tools", "not supported"),
    ({"model": "m", "input": "x", "previous_response_id": "a", "conversation": "b"}, "conversation", "not both"),
    ({"model": "m", "input": "x", "previous_response_id": "y" * 300}, "previous_response_id", "longer than"),
])
def test_bad_requests_are_400_naming_the_param(api_client, key, echo_flow, body, param, words):
    body = {**body, "model": str(echo_flow.pk)} if body.get("model") == "m" else body
    response = api_client.post(RESPONSES, body, format="json", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["param"] == param and words in error["message"]


def test_malformed_json_and_a_missing_key_answer_in_openais_shape(api_client, key):
    response = api_client.post(RESPONSES, b"{nope", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"
    response = api_client.post(RESPONSES, {"model": "x", "input": "y"}, format="json")
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_a_bearer_token_is_refused_on_the_other_routes(api_client, key, echo_flow):
    response = api_client.post(f"/api/v1/run/{echo_flow.pk}", {"input_value": "x"}, format="json",
                               HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 403


def test_a_failing_model_is_a_502_server_error(live_server, key, prompting_flow):  # nothing listens there
    with pytest.raises(openai.InternalServerError) as caught:
        client_for(live_server, key).responses.create(model=str(prompting_flow.pk), input="hi")
    assert caught.value.status_code == 502 and caught.value.body["type"] == "server_error"


def test_a_stream_that_fails_ends_with_response_failed(live_server, key, prompting_flow, model_server):
    model_server.mode = "500"
    events = list(client_for(live_server, key).responses.create(model=str(prompting_flow.pk), input="hi",
                                                                stream=True))
    assert [event.type for event in events] == ["response.created", "response.in_progress", "response.failed"]
    failed = events[-1].response
    assert failed.status == "failed" and failed.error.code == "server_error"
    assert "sk-secret-upstream" not in failed.error.message


def test_a_refused_bearer_key_is_audited_like_any_other(api_client, user, make_key, echo_flow):
    api_key, raw = make_key(user)
    revoke_api_key(api_key, actor_user=user)
    response = api_client.post(RESPONSES, {"model": str(echo_flow.pk), "input": "x"}, format="json",
                               HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 401
    [event] = ApiKeyEvent.objects.filter(kind="auth_failed")
    assert event.lookup_id == api_key.lookup_id and raw not in str(event.data)
