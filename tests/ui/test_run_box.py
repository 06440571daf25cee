"""The Run box (issue 16): tweaks and session id, the streamed answer, the script told when the
session or the form expired, and the warning before a run when no model is set up."""

import json

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient
from django.urls import reverse

from flows.services import import_flows
from tests.flows.conftest import FakeModelServer, closed_port
from variables import services as variables

from .exports import load_export

pytestmark = pytest.mark.django_db(transaction=True)

STREAM = "application/x-ndjson"
MODEL_NODE = "LanguageModelComponent-FLeYF"


@pytest.fixture
def echo_flow(user):
    return import_flows(user=user, payload=load_export("echo"))[0]


@pytest.fixture
def prompting_flow(user):
    return import_flows(user=user, payload=load_export("basic_prompting"))[0]


@pytest.fixture
def model_server(settings):
    with FakeModelServer() as server:
        settings.OPENAI_BASE_URL = server.base_url
        settings.OPENAI_API_KEY = "server-side-key"
        settings.MODEL_ALLOWED_BASE_URLS = []
        yield server


def _run(client, flow, data, accept="application/json"):
    return client.post(reverse("flows:run", args=[flow.pk]), data, HTTP_ACCEPT=accept)


def _lines(response) -> list[dict]:
    return [json.loads(line) for line in b"".join(response).decode().splitlines() if line.strip()]


# --- Tweaks and session ------------------------------------------------------------------------

def test_tweaks_change_a_component_for_this_run(signed_in, echo_flow):
    response = _run(signed_in, echo_flow, {"input_value": "", "tweaks": '{"ChatInput-b6UCc": {"input_value": "from a tweak"}}'})
    assert response.status_code == 200 and response.json()["output"] == "from a tweak"


def test_the_session_id_is_used_and_answered(signed_in, echo_flow):
    response = _run(signed_in, echo_flow, {"input_value": "hi", "session_id": "  chat-42 "})
    assert response.json() == {"output": "hi", "session_id": "chat-42"}


@pytest.mark.parametrize(("tweaks", "message"), [
    ("{not json", "Tweaks must be JSON: Expecting property name"),
    ("[1, 2]", "Tweaks must be a JSON object"),
    ('"text"', "Tweaks must be a JSON object"),
])
def test_bad_tweaks_are_a_field_error_for_the_script(signed_in, echo_flow, tweaks, message):
    response = _run(signed_in, echo_flow, {"input_value": "hi", "tweaks": tweaks})
    assert response.status_code == 422
    assert message in response.json()["errors"]["tweaks"][0] and message in response.json()["detail"]


def test_bad_tweaks_without_javascript_keep_the_form_open_with_the_error(signed_in, echo_flow):
    response = _run(signed_in, echo_flow, {"input_value": "hi", "tweaks": "{oops"}, accept="text/html")
    body = response.content.decode()
    assert response.status_code == 400
    assert '<details class="run-options" open>' in body and "Tweaks must be JSON" in body
    assert 'aria-invalid="true"' in body and "{oops</textarea>" in body


def test_a_tweak_naming_nothing_is_the_runs_own_error(signed_in, echo_flow):
    response = _run(signed_in, echo_flow, {"input_value": "hi", "tweaks": '{"NoSuchNode": {"x": 1}}'})
    assert response.status_code == 422 and "names no node" in response.json()["detail"]


def test_without_javascript_the_answer_and_its_session_are_on_the_page(signed_in, echo_flow):
    response = _run(signed_in, echo_flow, {"input_value": "hello", "session_id": "s-1"}, accept="text/html")
    body = response.content.decode()
    assert "<pre>hello</pre>" in body and "Session <code>s-1</code>" in body
    assert 'role="status" id="run-status">The flow answered: hello' in body  # announced once


# --- Streaming ---------------------------------------------------------------------------------

def test_the_run_box_streams_the_models_tokens_then_the_answer(signed_in, prompting_flow, model_server):
    response = _run(signed_in, prompting_flow, {"input_value": "hi", "session_id": "s-9"}, accept=STREAM)
    assert response.status_code == 200 and response["Content-Type"].startswith(STREAM)
    lines = _lines(response)
    assert [line["chunk"] for line in lines if line["event"] == "token"] == model_server.tokens
    assert lines[-1] == {"event": "end", "output": "Hello from the model", "session_id": "s-9"}
    assert model_server.last["json"]["stream"] is True


def test_a_flow_without_a_model_streams_its_answer_in_one_end_line(signed_in, echo_flow):
    lines = _lines(_run(signed_in, echo_flow, {"input_value": "plain"}, accept=STREAM))
    assert lines == [{"event": "end", "output": "plain", "session_id": str(echo_flow.pk)}]


def test_a_model_failure_while_streaming_is_an_error_line(signed_in, prompting_flow, model_server):
    model_server.mode = "500"
    lines = _lines(_run(signed_in, prompting_flow, {"input_value": "hi"}, accept=STREAM))
    assert lines[-1]["event"] == "error" and "HTTP 500" in lines[-1]["detail"] and lines[-1]["status"] == 502
    assert "sk-secret-upstream" not in json.dumps(lines)


def test_a_run_refused_before_it_starts_is_json_not_a_stream(signed_in, echo_flow):
    response = _run(signed_in, echo_flow, {"input_value": "hi", "tweaks": '{"code": "x"}'}, accept=STREAM)
    assert response.status_code == 422 and response["Content-Type"] == "application/json"


def test_the_stream_arrives_over_asgi_in_several_chunks(user, prompting_flow, model_server):
    client = AsyncClient()
    client.force_login(user)

    async def run():
        response = await client.post(reverse("flows:run", args=[prompting_flow.pk]), {"input_value": "hi"},
                                     headers={"Accept": STREAM})
        return [chunk async for chunk in response.streaming_content]

    chunks = async_to_sync(run)()
    lines = [json.loads(line) for line in b"".join(chunks).decode().splitlines()]
    assert lines[-1]["output"] == "Hello from the model" and len(chunks) == len(model_server.tokens) + 1


# --- Expired session and form ------------------------------------------------------------------

def test_a_run_after_the_session_ended_tells_the_script_so(client, echo_flow):
    response = _run(client, echo_flow, {"input_value": "hi"})
    assert response.status_code == 401
    assert response.json() == {"detail": "Your session expired. Sign in again, then run the flow again.",
                               "code": "session_expired",
                               "login_url": f"/login/?next={reverse('flows:detail', args=[echo_flow.pk])}"}


def test_a_run_after_the_session_ended_without_javascript_signs_in_back_to_the_flow(client, echo_flow):
    response = _run(client, echo_flow, {"input_value": "hi"}, accept="text/html")
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next=/flows/{echo_flow.pk}/"


def test_a_refused_csrf_token_tells_the_script_to_reload(client, user, echo_flow):
    client.handler.enforce_csrf_checks = True
    client.force_login(user)
    response = _run(client, echo_flow, {"input_value": "hi"}, accept=STREAM)
    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed" and "Reload the page" in response.json()["detail"]


# --- Before a run: is a model set up? ----------------------------------------------------------

def test_no_warning_when_the_server_has_a_key(signed_in, prompting_flow, settings):
    settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = "https://api.openai.com/v1", "sk-server"
    body = signed_in.get(reverse("flows:detail", args=[prompting_flow.pk])).content.decode()
    assert "Set up a model before you run this flow." not in body


def test_a_model_flow_without_any_key_warns_and_links_to_how(signed_in, prompting_flow, settings):
    settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = "https://api.openai.com/v1", ""
    body = signed_in.get(reverse("flows:detail", args=[prompting_flow.pk])).content.decode()
    assert "Set up a model before you run this flow." in body
    assert "this server has no OPENAI_API_KEY for https://api.openai.com/v1" in body
    assert f'href="{reverse("flows:components")}#models"' in body
    assert "Language Model" in body and MODEL_NODE in body


def test_a_local_model_server_needs_no_key(signed_in, prompting_flow, settings):
    settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = f"http://127.0.0.1:{closed_port()}/v1", ""
    body = signed_in.get(reverse("flows:detail", args=[prompting_flow.pk])).content.decode()
    assert "Set up a model before you run this flow." not in body


def test_a_flow_loading_a_missing_variable_warns_until_the_variable_exists(signed_in, user, settings):
    settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = "https://api.openai.com/v1", ""
    export = load_export("basic_prompting")
    model = next(node for node in export["data"]["nodes"] if node["id"] == MODEL_NODE)
    model["data"]["node"]["template"]["api_key"].update({"value": "MY_OPENAI_KEY", "load_from_db": True})
    flow = import_flows(user=user, payload=export)[0]
    url = reverse("flows:detail", args=[flow.pk])
    body = signed_in.get(url).content.decode()
    assert "It loads its API key from your variable MY_OPENAI_KEY, which does not exist yet." in body
    assert f'href="{reverse("variables:create")}">Create the Credential variable MY_OPENAI_KEY' in body
    variables.create_variable(owner=user, name="MY_OPENAI_KEY", value="sk-mine", type="Credential")
    assert "Set up a model before you run this flow." not in signed_in.get(url).content.decode()


def test_another_users_variable_does_not_count(signed_in, user, other_user, settings):
    settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = "https://api.openai.com/v1", ""
    export = load_export("basic_prompting")
    model = next(node for node in export["data"]["nodes"] if node["id"] == MODEL_NODE)
    model["data"]["node"]["template"]["api_key"].update({"value": "SHARED_NAME", "load_from_db": True})
    flow = import_flows(user=user, payload=export)[0]
    variables.create_variable(owner=other_user, name="SHARED_NAME", value="sk-theirs", type="Credential")
    assert "SHARED_NAME, which does not exist yet" in signed_in.get(reverse("flows:detail", args=[flow.pk])).content.decode()


def test_a_flow_without_a_model_never_warns(signed_in, echo_flow, settings):
    settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = "https://api.openai.com/v1", ""
    assert "Set up a model" not in signed_in.get(reverse("flows:detail", args=[echo_flow.pk])).content.decode()
