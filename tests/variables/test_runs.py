"""Runs: fields with load_from_db take the flow owner's variable, a header's, or (if allowed) the environment's."""

import logging

import pytest

from flows import services as flow_services
from variables import services

from .conftest import MODEL_NODE, SECRET, prompting_export

pytestmark = pytest.mark.django_db


def run(api_client, flow, key, body=None, **headers):
    return api_client.post(f"/api/v1/run/{flow.pk}", body or {"input_value": "hi"}, format="json",
                           HTTP_X_API_KEY=key, **headers)


def test_the_owners_credential_is_sent_to_the_model_and_never_answered(
        api_client, user, variable_flow, key, model_server, caplog):
    services.create_variable(owner=user, name="OPENAI_API_KEY", value=SECRET)
    with caplog.at_level(logging.DEBUG):
        response = run(api_client, variable_flow, key)
    assert response.status_code == 200
    assert model_server.last["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert SECRET not in response.content.decode()
    assert SECRET not in caplog.text


def test_a_missing_variable_is_a_422_naming_it_and_the_node(api_client, variable_flow, key, model_server):
    response = run(api_client, variable_flow, key)
    assert response.status_code == 422
    body = response.json()
    assert "'OPENAI_API_KEY'" in body["detail"] and MODEL_NODE in body["detail"]
    assert body["node_ids"] == [MODEL_NODE]
    assert model_server.requests == []


def test_another_users_variable_of_the_same_name_is_never_used(
        api_client, other_user, variable_flow, key, model_server):
    services.create_variable(owner=other_user, name="OPENAI_API_KEY", value="bobs-secret")
    response = run(api_client, variable_flow, key)
    assert response.status_code == 422 and "bobs-secret" not in response.content.decode()
    assert model_server.requests == []


def test_each_owner_gets_their_own_variable(api_client, user, other_user, other_key, model_server):
    services.create_variable(owner=user, name="OPENAI_API_KEY", value="alices-secret")
    services.create_variable(owner=other_user, name="OPENAI_API_KEY", value="bobs-secret")
    [bobs_flow] = flow_services.import_flows(user=other_user, payload=prompting_export())
    assert run(api_client, bobs_flow, other_key).status_code == 200
    assert model_server.last["headers"]["Authorization"] == "Bearer bobs-secret"


@pytest.mark.parametrize("header", ["HTTP_X_LANGFLOW_GLOBAL_VAR_OPENAI_API_KEY", "HTTP_X_LANGFLOW_GLOBAL_VAR_openai_api_key"])
def test_a_header_gives_the_value_for_that_run_only(api_client, user, variable_flow, key, model_server, header):
    services.create_variable(owner=user, name="OPENAI_API_KEY", value=SECRET)
    assert run(api_client, variable_flow, key, **{header: "header-key"}).status_code == 200
    assert model_server.last["headers"]["Authorization"] == "Bearer header-key"
    assert run(api_client, variable_flow, key).status_code == 200
    assert model_server.last["headers"]["Authorization"] == f"Bearer {SECRET}"


def test_a_header_is_enough_without_a_stored_variable(api_client, variable_flow, key, model_server):
    response = run(api_client, variable_flow, key, HTTP_X_LANGFLOW_GLOBAL_VAR_OPENAI_API_KEY="header-key")
    assert response.status_code == 200
    assert model_server.last["headers"]["Authorization"] == "Bearer header-key"


def test_the_process_endpoint_reads_the_headers_too(api_client, variable_flow, key, model_server):
    response = api_client.post(f"/api/v1/process/{variable_flow.pk}", {"inputs": {"input_value": "hi"}},
                               format="json", HTTP_X_API_KEY=key, HTTP_X_LANGFLOW_GLOBAL_VAR_OPENAI_API_KEY="hk")
    assert response.status_code == 200
    assert model_server.last["headers"]["Authorization"] == "Bearer hk"


def test_the_environment_is_not_a_fallback_by_default(api_client, variable_flow, key, model_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "env-key")
    assert run(api_client, variable_flow, key).status_code == 422
    assert model_server.requests == []


def test_the_environment_is_a_fallback_when_the_operator_allows_it(
        api_client, user, variable_flow, key, model_server, monkeypatch, settings):
    settings.VARIABLES_FALLBACK_TO_ENV = True
    monkeypatch.setenv("OPENAI_API_KEY", "env-key")
    assert run(api_client, variable_flow, key).status_code == 200
    assert model_server.last["headers"]["Authorization"] == "Bearer env-key"
    services.create_variable(owner=user, name="OPENAI_API_KEY", value=SECRET)  # the user's own wins
    assert run(api_client, variable_flow, key).status_code == 200
    assert model_server.last["headers"]["Authorization"] == f"Bearer {SECRET}"


@pytest.mark.parametrize("name", ["SECRET_KEY", "DATABASE_URL", "VARIABLE_ENCRYPTION_KEYS", "API_KEY_PEPPERS"])
def test_the_servers_own_secrets_are_never_a_fallback(api_client, user, key, model_server, monkeypatch, settings, name):
    settings.VARIABLES_FALLBACK_TO_ENV = True
    monkeypatch.setenv(name, "server-secret-value")
    [flow] = flow_services.import_flows(user=user, payload=prompting_export(api_key=name))
    response = run(api_client, flow, key)
    assert response.status_code == 422 and "server-secret-value" not in response.content.decode()
    assert model_server.requests == []


def test_a_credential_cannot_fill_a_field_that_is_not_secret(api_client, user, key, model_server):
    services.create_variable(owner=user, name="OPENAI_API_KEY", value=SECRET)
    export = prompting_export()
    chat_input = next(node for node in export["data"]["nodes"] if node["data"]["type"] == "ChatInput")
    chat_input["data"]["node"]["template"]["input_value"].update({"value": "OPENAI_API_KEY", "load_from_db": True})
    [flow] = flow_services.import_flows(user=user, payload=export)
    response = api_client.post(f"/api/v1/run/{flow.pk}", {}, format="json", HTTP_X_API_KEY=key)
    assert response.status_code == 422 and "Credential" in response.json()["detail"]
    assert SECRET not in response.content.decode()
    assert model_server.requests == []


def test_a_generic_may_fill_any_field(api_client, user, key, model_server):
    services.create_variable(owner=user, name="OPENAI_API_KEY", value=SECRET)
    services.create_variable(owner=user, name="GREETING", value="Hello from a variable", type="Generic")
    export = prompting_export()
    chat_input = next(node for node in export["data"]["nodes"] if node["data"]["type"] == "ChatInput")
    chat_input["data"]["node"]["template"]["input_value"].update({"value": "GREETING", "load_from_db": True})
    [flow] = flow_services.import_flows(user=user, payload=export)
    assert api_client.post(f"/api/v1/run/{flow.pk}", {}, format="json", HTTP_X_API_KEY=key).status_code == 200
    assert model_server.last["json"]["messages"][-1]["content"] == "Hello from a variable"


def test_a_tweak_cannot_send_a_stored_credential_elsewhere(
        api_client, user, variable_flow, key, model_server, second_model_server):
    services.create_variable(owner=user, name="OPENAI_API_KEY", value=SECRET)
    tweaks = {MODEL_NODE: {"base_url": second_model_server.base_url}}
    response = run(api_client, variable_flow, key, {"input_value": "hi", "tweaks": tweaks})
    assert response.status_code == 422 and "base_url" in response.json()["detail"]
    assert second_model_server.requests == [] and model_server.requests == []


def test_a_tweaked_key_is_used_as_given(api_client, user, variable_flow, key, model_server):
    services.create_variable(owner=user, name="OPENAI_API_KEY", value=SECRET)
    tweaks = {MODEL_NODE: {"api_key": "tweaked-key"}}
    assert run(api_client, variable_flow, key, {"input_value": "hi", "tweaks": tweaks}).status_code == 200
    assert model_server.last["headers"]["Authorization"] == "Bearer tweaked-key"


def test_a_rotated_away_key_fails_closed_with_a_json_detail_naming_the_variable(
        api_client, user, variable_flow, key, model_server, keys, settings, caplog):
    variable = services.create_variable(owner=user, name="OPENAI_API_KEY", value=SECRET)
    settings.VARIABLE_ENCRYPTION_KEYS = {2: keys[2]}
    with caplog.at_level(logging.DEBUG):
        response = run(api_client, variable_flow, key)
    assert response.status_code == 500
    body = response.json()
    assert "OPENAI_API_KEY" in body["detail"] and "Traceback" not in response.content.decode()
    assert variable.value not in response.content.decode() and variable.value not in caplog.text
    assert SECRET not in caplog.text
    assert model_server.requests == []


def test_the_flow_page_run_uses_the_variable_too(client, user, variable_flow, model_server):
    services.create_variable(owner=user, name="OPENAI_API_KEY", value=SECRET)
    client.force_login(user)
    response = client.post(f"/flows/{variable_flow.pk}/run/", {"input_value": "hi"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 200, response.content
    assert model_server.last["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert SECRET not in response.content.decode()
