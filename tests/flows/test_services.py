"""The services the browser UI builds on, and the model's rules."""

import json

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.http import Http404

from flows import services
from flows.models import Flow, FlowPermission
from tests.flows.conftest import load_fixture

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("shape", ["object", "list", "flows key", "bytes", "text"])
def test_import_takes_every_shape_of_export(user, shape):
    echo = load_fixture("echo.json")
    payload = {"object": echo, "list": [echo], "flows key": {"flows": [echo]},
               "bytes": json.dumps(echo).encode(), "text": json.dumps(echo)}[shape]
    [flow] = services.import_flows(user=user, payload=payload)
    assert (flow.name, flow.endpoint_name, flow.owner) == ("Echo", "echo", user)


@pytest.mark.parametrize(("payload", "words"), [
    ([], "holds no flow"),
    (["not an object"], "Flow 1: must be an object"),
    ({"description": "no name"}, "'name' is required"),
    ({"name": 5}, "'name' must be a string"),
    ({"name": "x", "endpoint_name": "bad name!"}, "Flow 'x': endpoint_name"),
    (b"{nope", "not valid JSON"),
])
def test_import_refuses_bad_exports_with_a_message(user, payload, words):
    with pytest.raises(ValidationError) as error:
        services.import_flows(user=user, payload=payload)
    assert words in " ".join(error.value.messages)
    assert not Flow.objects.exists()


def test_import_renames_clashes_within_one_file_too(user):
    echo = load_fixture("echo.json")
    flows = services.import_flows(user=user, payload=[echo, echo, echo])
    assert [(f.name, f.endpoint_name) for f in flows] == [("Echo", "echo"), ("Echo (1)", "echo-1"),
                                                           ("Echo (2)", "echo-2")]


def test_visible_to_is_the_owners_flows_and_nothing_for_anonymous(user, other_user, echo_flow):
    Flow.objects.create(owner=other_user, name="theirs")
    assert list(Flow.objects.visible_to(user, None, FlowPermission.RUN)) == [echo_flow]
    assert not Flow.objects.visible_to(AnonymousUser()).exists()


def test_lookup_by_id_or_endpoint_name_is_scoped_to_the_owner(user, other_user, echo_flow):
    assert services.get_flow_for_request(user=user, reference=str(echo_flow.pk)) == echo_flow
    assert services.get_flow_for_request(user=user, reference="echo") == echo_flow
    for reference in (str(echo_flow.pk), "echo"):
        with pytest.raises(Http404, match="Flow not found"):
            services.get_flow_for_request(user=other_user, reference=reference)


def test_run_problem_explains_why_a_flow_cannot_run(user, echo_flow):
    [meeting] = services.import_flows(user=user, payload=load_fixture("meeting_summary.json"))
    assert services.run_problem(echo_flow) is None
    assert "AssemblyAITranscriber (node AAITranscriber-ms)" in services.run_problem(meeting)


def test_run_flow_answers_langflows_shape_for_the_ui(echo_flow):
    # async_to_sync: the run stores its chat messages on this thread, inside the test's transaction.
    answer = async_to_sync(services.run_planned)(services.plan_run(flow=echo_flow, input_value="from the UI"))
    assert answer["outputs"][0]["outputs"][0]["results"]["message"]["text"] == "from the UI"


def test_clearing_the_data_leaves_an_empty_graph(echo_flow):
    assert services.update_flow(echo_flow, data=None).data == {"nodes": [], "edges": []}


def test_update_flow_refuses_fields_it_does_not_own(echo_flow):
    with pytest.raises(ValueError, match="owner"):
        services.update_flow(echo_flow, owner=None)


def test_a_blank_endpoint_name_is_stored_as_none_so_many_flows_can_have_none(user):
    first = services.create_flow(owner=user, name="a", endpoint_name="")
    second = services.create_flow(owner=user, name="b", endpoint_name="")
    assert first.endpoint_name is None and second.endpoint_name is None


def test_the_admin_lists_flows_with_owner_and_endpoint(client, django_user_model, echo_flow):
    admin = django_user_model.objects.create_superuser(username="root", password="root-password-1")
    client.force_login(admin)
    response = client.get("/admin/flows/flow/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Echo" in page and "alice" in page and "echo" in page
    assert client.get(f"/admin/flows/flow/{echo_flow.pk}/change/").status_code == 200


def test_input_nested_too_deeply_is_refused_before_the_run_with_a_400(api_client, echo_flow, key):
    nested = "x"
    for _ in range(600):
        nested = [nested]
    response = api_client.post(f"/api/v1/run/{echo_flow.pk}", {"output_component": "ChatInput-b6UCc",
                               "tweaks": {"ChatInput-b6UCc": {"input_value": nested}}}, format="json",
                               HTTP_X_API_KEY=key)
    assert response.status_code == 400
    assert response.json()["detail"] == "The request body is not valid JSON: it is nested more than 64 levels deep."


def test_a_number_too_large_for_a_float_is_a_400(api_client, key):
    response = api_client.generic("POST", "/api/v1/flows/", '{"name": "x", "data": {"nodes": [], "edges": [], '
                                  '"zoom": 1e400}}', content_type="application/json", HTTP_X_API_KEY=key)
    assert response.status_code == 400 and "too large" in response.json()["detail"]


def test_a_name_taken_while_an_import_was_checked_is_renamed_when_written(user, monkeypatch):
    from flows import engine

    compile_graph = engine.compile_graph

    def compile_then_someone_saves(data):
        if not Flow.objects.filter(name="Echo").exists():
            Flow.objects.create(owner=user, name="Echo", endpoint_name="echo")  # another request, meanwhile
        return compile_graph(data)

    monkeypatch.setattr(engine, "compile_graph", compile_then_someone_saves)
    [flow] = services.import_flows(user=user, payload=load_fixture("echo.json"))
    assert (flow.name, flow.endpoint_name) == ("Echo (1)", "echo-1")


def test_an_import_checks_every_flow_before_it_writes_any(user):
    echo, agent = load_fixture("echo.json"), load_fixture("meeting_summary.json")
    with pytest.raises(ValidationError) as error:
        services.import_flows(user=user, payload=[echo, agent], runnable_only=True)
    assert "cannot run here" in " ".join(error.value.messages) and "AssemblyAITranscriber (node AAITranscriber-ms)" in str(error.value)
    assert not Flow.objects.exists()
    assert len(services.import_flows(user=user, payload=[echo, agent])) == 2  # work in progress is stored
