"""Endpoint names are whole names, and an id always wins over an endpoint name spelt like it.

Runs on SQLite and, in CI, on PostgreSQL (DATABASE_URL): the two databases return the id's
and the endpoint name's rows in no particular order, so neither order may decide.
"""

import importlib
import json
import uuid

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from flows import services
from flows.models import Flow
from tests.flows.conftest import load_fixture

pytestmark = pytest.mark.django_db

BAD_NAMES = ["echo\n", "echo\r\n", "echo ", " echo", "ec ho", "écho", "echo\x00", "echo/run", "\n"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_an_endpoint_name_with_anything_but_letters_digits_dash_underscore_is_refused(user, name):
    with pytest.raises(ValidationError) as error:
        services.create_flow(owner=user, name="x", endpoint_name=name)
    assert "endpoint_name" in error.value.message_dict
    assert not Flow.objects.exists()


@pytest.mark.parametrize("name", [name for name in BAD_NAMES if "\x00" not in name])  # NUL: the body's 400
def test_the_api_and_the_import_refuse_it_too(api_client, key, name):
    created = api_client.post("/api/v1/flows/", {"name": "x", "endpoint_name": name}, format="json",
                              HTTP_X_API_KEY=key)
    assert created.status_code == 422 and "endpoint_name" in created.json()["errors"]
    export = {**load_fixture("echo.json"), "endpoint_name": name}
    uploaded = api_client.post("/api/v1/flows/upload/", {"file": SimpleUploadedFile(
        "echo.json", json.dumps(export).encode())}, HTTP_X_API_KEY=key)
    assert uploaded.status_code == 422 and "endpoint_name" in uploaded.json()["detail"]
    assert not Flow.objects.exists()


@pytest.mark.parametrize("field", ["name", "description"])
def test_a_nul_in_a_name_or_description_is_a_validation_error_on_both_databases(user, field):
    fields = {"name": "x", field: "a\x00b"}
    with pytest.raises(ValidationError) as error:
        services.create_flow(owner=user, **fields)
    assert field in error.value.message_dict


def test_a_valid_endpoint_name_is_stored_and_runs(api_client, user, key):
    services.create_flow(owner=user, name="Echo", endpoint_name="my_echo-2", data=load_fixture("echo.json")["data"])
    response = api_client.post("/api/v1/run/my_echo-2", {"input_value": "hi"}, format="json", HTTP_X_API_KEY=key)
    assert response.status_code == 200


def id_spellings(flow_id: uuid.UUID) -> list[str]:
    """Spellings of one id that are also valid endpoint names."""
    return [str(flow_id), str(flow_id).upper(), flow_id.hex, flow_id.hex.upper()]


@pytest.fixture(params=["impostor first", "impostor last"])
def target_and_impostors(request, user):
    """A flow, and for each spelling of its id another flow with that spelling as endpoint name,
    created before or after it (the order rows come back in follows neither rule on PostgreSQL)."""
    target_id = uuid.UUID("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")  # letters, so case matters
    echo = load_fixture("echo.json")["data"]

    def impostors():
        return [services.create_flow(owner=user, name=f"Impostor {number}", endpoint_name=spelling,
                                     data={"nodes": [], "edges": []})
                for number, spelling in enumerate(id_spellings(target_id))]

    if request.param == "impostor first":
        others = impostors()
        target = services.create_flow(owner=user, name="Target", data=echo, flow_id=target_id)
    else:
        target = services.create_flow(owner=user, name="Target", data=echo, flow_id=target_id)
        others = impostors()
    return target, others


def test_an_id_in_any_spelling_resolves_to_the_flow_with_that_id(user, target_and_impostors):
    target, impostors = target_and_impostors
    for spelling in [*id_spellings(target.pk), "{" + str(target.pk) + "}", f"urn:uuid:{target.pk}"]:
        for with_data in (True, False):
            found = services.get_flow_for_request(user=user, reference=spelling, with_data=with_data)
            assert found.pk == target.pk, (connection.vendor, spelling)
    assert services.get_flow_for_request(user=user, reference=target.pk) == target


def test_the_api_runs_and_reads_the_flow_with_that_id(api_client, user, key, target_and_impostors):
    target, _ = target_and_impostors
    for spelling in id_spellings(target.pk):
        run = api_client.post(f"/api/v1/run/{spelling}", {"input_value": "hi"}, format="json", HTTP_X_API_KEY=key)
        assert run.status_code == 200 and run.json()["session_id"] == str(target.pk), spelling
        read = api_client.get(f"/api/v1/flows/{spelling}", HTTP_X_API_KEY=key)
        assert read.status_code == 200 and read.json()["id"] == str(target.pk), spelling


def test_an_impostor_is_still_reached_when_no_flow_has_that_id(user):
    name = str(uuid.uuid4()).upper()
    impostor = services.create_flow(owner=user, name="Named like an id", endpoint_name=name)
    assert services.get_flow_for_request(user=user, reference=name) == impostor


def test_a_key_limited_to_the_impostor_reaches_it_not_the_flow_with_that_id(user, make_key, target_and_impostors):
    from apikeys.access import KeyAccess

    target, impostors = target_and_impostors
    api_key, _ = make_key(user, access=KeyAccess(all_flows=False, flow_ids=(str(impostors[1].pk),)))
    spelling = id_spellings(target.pk)[1]
    found = services.get_flow_for_request(user=user, api_key=api_key, reference=spelling)
    assert found == impostors[1]


def test_the_migration_repairs_endpoint_names_stored_under_the_old_check(user, other_user):
    migration = importlib.import_module("flows.migrations.0002_endpoint_name_whole_match")
    Flow.objects.create(owner=user, name="kept", endpoint_name="echo")
    trimmed = Flow.objects.create(owner=user, name="trimmed", endpoint_name="other")
    clash = Flow.objects.create(owner=user, name="clash", endpoint_name="x")
    hopeless = Flow.objects.create(owner=other_user, name="hopeless", endpoint_name="y")
    Flow.objects.filter(pk=trimmed.pk).update(endpoint_name="solo\n")
    Flow.objects.filter(pk=clash.pk).update(endpoint_name="echo\n")  # "echo" is taken by "kept"
    Flow.objects.filter(pk=hopeless.pk).update(endpoint_name="two words")
    migration.repair_endpoint_names(apps, None)
    names = dict(Flow.objects.values_list("name", "endpoint_name"))
    assert names == {"kept": "echo", "trimmed": "solo", "clash": None, "hopeless": None}
