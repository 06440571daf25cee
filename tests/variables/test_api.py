"""Langflow's /api/v1/variables/ routes: shapes, owners, and who may call them."""

import pytest
from rest_framework.test import APIClient

from variables import services
from variables.models import Variable

from .conftest import SECRET

pytestmark = pytest.mark.django_db

URL = "/api/v1/variables/"


@pytest.fixture
def session(user):
    client = APIClient()
    client.force_login(user)
    return client


def test_create_answers_201_with_langflows_shape_and_no_value(session, user):
    response = session.post(URL, {"name": "OPENAI_API_KEY", "value": SECRET, "type": "Credential",
                                  "default_fields": ["api_key"]}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "OPENAI_API_KEY" and body["type"] == "Credential"
    assert body["value"] is None and body["default_fields"] == ["api_key"]
    assert SECRET not in response.content.decode()
    assert services.reveal(Variable.objects.get(pk=body["id"])) == SECRET


def test_a_variable_is_a_credential_unless_told_otherwise(session):
    assert session.post(URL, {"name": "K", "value": SECRET}, format="json").json()["type"] == "Credential"


def test_a_generic_value_is_returned(session):
    body = session.post(URL, {"name": "REGION", "value": "eu-west-1", "type": "Generic"}, format="json").json()
    assert body["value"] == "eu-west-1"


def test_list_shows_only_the_callers_variables_never_a_credentials_value(session, user, other_user):
    services.create_variable(owner=user, name="MINE", value=SECRET)
    services.create_variable(owner=other_user, name="THEIRS", value="other-secret")
    response = session.get(URL)
    assert response.status_code == 200
    assert [(item["name"], item["value"]) for item in response.json()] == [("MINE", None)]
    assert SECRET not in response.content.decode()


@pytest.mark.parametrize("body, detail", [
    ({"name": "", "value": ""}, "Variable name and value cannot be empty"),
    ({"name": "", "value": "x"}, "Variable name cannot be empty"),
    ({"name": "X", "value": ""}, "Variable value cannot be empty"),
    ({"name": " X", "value": "x"}, "spaces at either end"),
    ({"name": "X", "value": "x", "type": "Secret"}, None),
])
def test_bad_input_is_refused(session, body, detail):
    response = session.post(URL, body, format="json")
    assert response.status_code in (400, 422)
    if detail:
        assert response.status_code == 400 and detail in response.json()["detail"]
    assert not Variable.objects.exists()


def test_a_taken_name_is_a_400(session, user):
    services.create_variable(owner=user, name="OPENAI_API_KEY", value="one")
    response = session.post(URL, {"name": "OPENAI_API_KEY", "value": "two"}, format="json")
    assert response.status_code == 400 and response.json() == {"detail": "Variable name already exists"}


def test_the_same_name_is_free_for_another_user(session, other_user):
    services.create_variable(owner=other_user, name="OPENAI_API_KEY", value="theirs")
    assert session.post(URL, {"name": "OPENAI_API_KEY", "value": SECRET}, format="json").status_code == 201


def test_patch_changes_the_value_and_answers_no_value(session, user):
    variable = services.create_variable(owner=user, name="OPENAI_API_KEY", value="old")
    response = session.patch(f"{URL}{variable.pk}", {"id": str(variable.pk), "value": SECRET}, format="json")
    assert response.status_code == 200 and response.json()["value"] is None
    assert services.reveal(Variable.objects.get(pk=variable.pk)) == SECRET


def test_patch_renames_and_retypes(session, user):
    variable = services.create_variable(owner=user, name="OLD", value="plain")
    body = session.patch(f"{URL}{variable.pk}", {"name": "NEW", "type": "Generic"}, format="json").json()
    assert (body["name"], body["type"], body["value"]) == ("NEW", "Generic", "plain")


def test_delete_answers_204(session, user):
    variable = services.create_variable(owner=user, name="OPENAI_API_KEY", value=SECRET)
    assert session.delete(f"{URL}{variable.pk}").status_code == 204
    assert not Variable.objects.exists()


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_another_users_variable_is_404_like_a_missing_one(session, other_user, method):
    variable = services.create_variable(owner=other_user, name="OPENAI_API_KEY", value="theirs")
    response = getattr(session, method)(f"{URL}{variable.pk}", {"value": "mine now"}, format="json")
    missing = getattr(session, method)(f"{URL}00000000-0000-0000-0000-000000000000", {"value": "x"}, format="json")
    assert response.status_code == missing.status_code == 404
    assert response.json() == missing.json() == {"detail": "Variable not found"}
    assert services.reveal(Variable.objects.get(pk=variable.pk)) == "theirs"


def test_a_session_needs_its_csrf_token(user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(URL, {"name": "K", "value": SECRET}, format="json").status_code == 403
    assert not Variable.objects.exists()


def test_anonymous_callers_are_refused(api_client):
    assert api_client.get(URL).status_code in (401, 403)


def test_a_key_with_write_and_all_flows_may_manage_variables(api_client, user, make_key):
    _, raw = make_key(user, access=_access(permissions=["run", "read", "write"]))
    response = api_client.post(URL, {"name": "K", "value": SECRET}, format="json", HTTP_X_API_KEY=raw)
    assert response.status_code == 201
    assert api_client.get(URL, HTTP_X_API_KEY=raw).status_code == 200


@pytest.mark.parametrize("permissions", [["run"], ["read"], ["run", "read"]])
def test_a_key_without_write_is_refused_naming_it(api_client, user, make_key, permissions):
    services.create_variable(owner=user, name="K", value=SECRET)
    _, raw = make_key(user, access=_access(permissions=permissions))
    for response in (api_client.get(URL, HTTP_X_API_KEY=raw),
                     api_client.post(URL, {"name": "L", "value": "x"}, format="json", HTTP_X_API_KEY=raw)):
        assert response.status_code == 403
        assert response.json() == {"detail": "This API key lacks the 'write' permission"}


def test_a_key_limited_to_chosen_flows_is_refused(api_client, user, make_key, variable_flow):
    _, raw = make_key(user, access=_access(permissions=["run", "read", "write"], flow_ids=[variable_flow.pk]))
    response = api_client.get(URL, HTTP_X_API_KEY=raw)
    assert response.status_code == 403 and "limited to chosen flows" in response.json()["detail"]


def _access(*, permissions, flow_ids=None):
    from apikeys.access import KeyAccess

    return KeyAccess(all_flows=flow_ids is None, flow_ids=tuple(str(flow_id) for flow_id in flow_ids or ()),
                     permissions=tuple(permissions))
