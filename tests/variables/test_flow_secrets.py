"""Literal keys in flows move into Credential variables on import and save; existing flows by migration."""

import io
import json
from importlib import import_module

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from flows import services as flow_services
from flows.models import Flow
from variables import services
from variables.models import Variable, VariableType

from .conftest import MODEL_NODE, SECRET, model_template, prompting_export

pytestmark = pytest.mark.django_db

FLOWS = "/api/v1/flows/"


def literal_export(name="Basic Prompting"):
    return prompting_export(api_key=SECRET, load_from_db=False, name=name)


def test_an_import_moves_the_key_into_a_credential_the_flow_then_loads(user):
    [flow] = flow_services.import_flows(user=user, payload=literal_export())
    field = model_template(Flow.objects.get(pk=flow.pk))["api_key"]
    assert field["load_from_db"] is True and field["value"] == "BASIC_PROMPTING_API_KEY"
    variable = Variable.objects.get(owner=user, name="BASIC_PROMPTING_API_KEY")
    assert variable.type == VariableType.CREDENTIAL and variable.default_fields == ["api_key"]
    assert services.reveal(variable) == SECRET
    assert SECRET not in json.dumps(Flow.objects.get(pk=flow.pk).data)
    assert flow.moved_secrets == [{"node_id": MODEL_NODE, "field": "api_key", "variable": "BASIC_PROMPTING_API_KEY"}]


def test_the_moved_key_is_used_when_the_flow_runs(api_client, user, key, model_server):
    [flow] = flow_services.import_flows(user=user, payload=literal_export())
    response = api_client.post(f"/api/v1/run/{flow.pk}", {"input_value": "hi"}, format="json", HTTP_X_API_KEY=key)
    assert response.status_code == 200
    assert model_server.last["headers"]["Authorization"] == f"Bearer {SECRET}"


def test_names_are_made_unique(user):
    services.create_variable(owner=user, name="BASIC_PROMPTING_API_KEY", value="already there")
    flows = flow_services.import_flows(user=user, payload=[literal_export(), literal_export("Basic Prompting")])
    names = [flow.moved_secrets[0]["variable"] for flow in flows]
    # The second flow is renamed "Basic Prompting (1)" by the import, and named after that.
    assert names == ["BASIC_PROMPTING_API_KEY_2", "BASIC_PROMPTING_1_API_KEY"]
    assert services.reveal(Variable.objects.get(owner=user, name="BASIC_PROMPTING_API_KEY")) == "already there"


def test_an_import_that_fails_creates_no_variable(user):
    bad = {"name": "Broken", "data": {"nodes": "not a list", "edges": []}}
    with pytest.raises(ValidationError):
        flow_services.import_flows(user=user, payload=[literal_export(), bad])
    assert not Variable.objects.exists() and not Flow.objects.exists()


def test_a_flow_loading_a_variable_is_left_as_it_is(user):
    [flow] = flow_services.import_flows(user=user, payload=prompting_export())
    assert model_template(flow)["api_key"]["value"] == "OPENAI_API_KEY"
    assert flow.moved_secrets == [] and not Variable.objects.exists()


@pytest.mark.parametrize("how", ["create", "put", "patch", "upload"])
def test_the_api_says_so_and_never_stores_or_returns_the_key(api_client, user, key, how):
    export = literal_export()
    if how == "create":
        response = api_client.post(FLOWS, export, format="json", HTTP_X_API_KEY=key)
    elif how == "put":
        response = api_client.put(f"{FLOWS}6f1a3e3c-9a4e-4f5e-8d55-2b1b8b7c1a01", export, format="json",
                                  HTTP_X_API_KEY=key)
    elif how == "patch":
        [flow] = flow_services.import_flows(user=user, payload=prompting_export())
        response = api_client.patch(f"{FLOWS}{flow.pk}", {"data": export["data"]}, format="json", HTTP_X_API_KEY=key)
    else:
        upload = io.BytesIO(json.dumps(export).encode())
        upload.name = "flow.json"
        response = api_client.post(f"{FLOWS}upload/", {"file": upload}, format="multipart", HTTP_X_API_KEY=key)
    assert response.status_code in (200, 201), response.content
    assert SECRET not in response.content.decode()
    body = response.json()
    body = body[0] if isinstance(body, list) else body
    assert body["moved_secrets"][0]["variable"] == "BASIC_PROMPTING_API_KEY"
    stored = Flow.objects.get(pk=body["id"])
    assert SECRET not in json.dumps(stored.data)
    assert SECRET not in api_client.get(f"{FLOWS}{stored.pk}", HTTP_X_API_KEY=key).content.decode()
    assert "moved_secrets" not in api_client.get(f"{FLOWS}{stored.pk}", HTTP_X_API_KEY=key).json()


def test_the_import_page_says_where_the_key_went(client, user):
    client.force_login(user)
    upload = SimpleUploadedFile("flow.json", json.dumps(literal_export()).encode(), content_type="application/json")
    response = client.post(reverse("flows:import"), {"file": upload}, follow=True)
    body = response.content.decode()
    assert "moved into Credential variables" in body and "BASIC_PROMPTING_API_KEY" in body
    assert SECRET not in body


def test_the_flow_page_marks_fields_filled_from_a_variable(client, user, variable_flow):
    client.force_login(user)
    body = client.get(reverse("flows:detail", args=[variable_flow.pk])).content.decode()
    assert "from variable" in body and "<code>OPENAI_API_KEY</code>" in body


def test_the_data_migration_moves_keys_out_of_existing_flows(user):
    [flow] = flow_services.import_flows(user=user, payload=prompting_export())
    data = literal_export()["data"]
    Flow.objects.filter(pk=flow.pk).update(data=data)  # as a flow saved before this release
    migration = import_module("variables.migrations.0002_move_flow_secrets")
    migration.move_flow_secrets(apps, None)
    stored = Flow.objects.get(pk=flow.pk)
    assert SECRET not in json.dumps(stored.data)
    name = model_template(stored)["api_key"]["value"]
    assert services.reveal(Variable.objects.get(owner=user, name=name)) == SECRET
    migration.move_flow_secrets(apps, None)  # again: nothing more to move
    assert Variable.objects.count() == 1
