"""The flow pages (issue 16): rename and endpoint name, replace from a new export, download the
export, several files at once, refusals grouped by component, the supported-components page, the
list marking a stored flow that cannot run, and the graph's picture."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from flows.models import Flow
from flows.services import import_flows

from .exports import load_export

pytestmark = pytest.mark.django_db

LIST = reverse("flows:list")
IMPORT = reverse("flows:import")
XSS = "<script>alert(1)</script>"


def _file(content, name="flow.json"):
    data = content if isinstance(content, bytes) else json.dumps(content).encode()
    return SimpleUploadedFile(name, data, content_type="application/json")


@pytest.fixture
def echo_flow(user):
    return import_flows(user=user, payload=load_export("echo"))[0]


def _unsupported(user, name="meeting"):
    """A flow stored as the API stores work in progress: it uses a component this server does not run."""
    return Flow.objects.create(owner=user, name=name, data=load_export("meeting_summary")["data"])


# --- Import ------------------------------------------------------------------------------------

def test_several_files_import_together(signed_in, user):
    second = load_export("echo") | {"name": "Second echo"}
    response = signed_in.post(IMPORT, {"file": [_file(load_export("echo"), "a.json"), _file(second, "b.json")]})
    assert response.status_code == 302 and response["Location"] == LIST
    assert sorted(Flow.objects.filter(owner=user).values_list("name", flat=True)) == ["Echo", "Second echo"]


def test_one_bad_file_among_several_imports_none_and_names_the_file(signed_in, user):
    response = signed_in.post(IMPORT, {"file": [_file(load_export("echo"), "good.json"), _file(b"{oops", "broken.json")]})
    body = response.content.decode()
    assert response.status_code == 400
    assert "broken.json: The file is not valid JSON" in body
    assert "You chose: good.json, broken.json." in body
    assert not Flow.objects.filter(owner=user).exists()


def test_refusals_are_grouped_by_component_keep_the_file_name_and_link_the_supported_list(signed_in, user):
    response = signed_in.post(IMPORT, {"file": [_file(load_export("echo"), "echo.json"),
                                                _file(load_export("meeting_summary"), "meeting.json")]})
    body = response.content.decode()
    assert response.status_code == 400
    assert "Nothing was imported: this flow uses components this server cannot run" in body
    assert "<strong>“Meeting Summary”</strong> <span class=\"muted\">from meeting.json</span> cannot run here." in body
    assert "Not supported here: AssemblyAI Transcriber." in body
    assert "<summary>Technical details</summary>" in body  # the node ids, folded away
    assert f'href="{reverse("flows:components")}"' in body
    assert not Flow.objects.filter(owner=user).exists()


def test_too_many_files_at_once_are_refused(signed_in):
    files = [_file(load_export("echo"), f"{index}.json") for index in range(21)]
    response = signed_in.post(IMPORT, {"file": files})
    assert response.status_code == 400 and "Choose at most 20 files at a time." in response.content.decode()


def test_the_import_field_takes_several_files(signed_in):
    body = signed_in.get(IMPORT).content.decode()
    assert 'type="file" name="file" accept=".json,application/json"' in body and " multiple" in body
    assert "data-drop-zone" in body


# --- Supported components and the list ---------------------------------------------------------

def test_the_supported_components_page_lists_the_registry_grouped_with_display_names(signed_in):
    from flows.engine.components import REGISTRY

    body = signed_in.get(reverse("flows:components")).content.decode()
    for type_name in REGISTRY:
        assert f"<code class=\"small\">{type_name}</code>" in body
    assert "Language Model" in body and "Models and agents" in body
    assert 'id="models"' in body and "OPENAI_API_KEY" in body


def test_the_list_marks_a_stored_flow_that_cannot_run(signed_in, user, echo_flow):
    broken = _unsupported(user)
    body = signed_in.get(LIST).content.decode()
    assert body.count("Cannot run here") == 1
    assert f'id="problem-{broken.pk}"' in body and f'id="problem-{echo_flow.pk}"' not in body


def test_a_flow_that_cannot_run_says_so_on_its_page_with_the_way_out(signed_in, user):
    broken = _unsupported(user)
    body = signed_in.get(reverse("flows:detail", args=[broken.pk])).content.decode()
    assert "This flow cannot run here." in body and "does not support" in body
    assert f'href="{reverse("flows:components")}"' in body and 'href="#replace"' in body


# --- Settings: rename, endpoint name, description ----------------------------------------------

def test_a_flow_is_renamed_with_a_new_endpoint_name(signed_in, echo_flow):
    url = reverse("flows:settings", args=[echo_flow.pk])
    response = signed_in.post(url, {"name": "Greeter", "endpoint_name": "greeter", "description": "Says hi"})
    assert response.status_code == 302 and response["Location"] == reverse("flows:detail", args=[echo_flow.pk])
    echo_flow.refresh_from_db()
    assert (echo_flow.name, echo_flow.endpoint_name, echo_flow.description) == ("Greeter", "greeter", "Says hi")
    assert "The flow “Greeter” was saved." in signed_in.get(response["Location"]).content.decode()


def test_an_empty_endpoint_name_clears_it(signed_in, echo_flow):
    echo_flow.endpoint_name = "old"
    echo_flow.save()
    signed_in.post(reverse("flows:settings", args=[echo_flow.pk]), {"name": "Echo", "endpoint_name": "", "description": ""})
    echo_flow.refresh_from_db()
    assert echo_flow.endpoint_name is None


@pytest.mark.parametrize(("data", "message"), [
    ({"name": "", "endpoint_name": "", "description": ""}, '<ul class="field-errors" id="id_name_error"><li>This field is required.'),
    ({"name": "Echo", "endpoint_name": "has spaces", "description": ""},
     '<ul class="field-errors" id="id_endpoint_name_error"><li>Use only letters, digits, &#x27;-&#x27; and &#x27;_&#x27;.'),
    ({"name": "Taken", "endpoint_name": "echo", "description": ""}, '<ul class="field-errors" id="id_name_error"><li>'),
    ({"name": "Echo", "endpoint_name": "taken", "description": ""},
     "You already have a flow with the endpoint name &#x27;taken&#x27;."),
])
def test_a_bad_rename_is_a_form_error_and_nothing_changes(signed_in, user, echo_flow, data, message):
    Flow.objects.create(owner=user, name="Taken", endpoint_name="taken", data=load_export("echo")["data"])
    assert echo_flow.endpoint_name == "echo"
    response = signed_in.post(reverse("flows:settings", args=[echo_flow.pk]), data)
    body = response.content.decode()
    assert response.status_code == 400 and message in body
    assert '<h1 class="flow-name">Echo</h1>' in body  # the page shows what is stored, not what was typed
    echo_flow.refresh_from_db()
    assert echo_flow.name == "Echo" and echo_flow.endpoint_name == "echo"


def test_another_users_name_does_not_clash(signed_in, other_user, echo_flow):
    Flow.objects.create(owner=other_user, name="Greeter", endpoint_name="greeter", data={"nodes": [], "edges": []})
    response = signed_in.post(reverse("flows:settings", args=[echo_flow.pk]),
                              {"name": "Greeter", "endpoint_name": "greeter", "description": ""})
    assert response.status_code == 302


def test_settings_get_goes_back_to_the_flow_page(signed_in, echo_flow):
    response = signed_in.get(reverse("flows:settings", args=[echo_flow.pk]))
    assert response["Location"] == reverse("flows:detail", args=[echo_flow.pk]) + "#settings"


# --- Replace and download ----------------------------------------------------------------------

def test_a_new_export_replaces_the_graph_and_keeps_id_name_and_endpoint(signed_in, user, echo_flow):
    echo_flow.endpoint_name = "echo"
    echo_flow.save()
    new = load_export("basic_prompting")
    response = signed_in.post(reverse("flows:replace", args=[echo_flow.pk]), {"file": _file(new, "v2.json")})
    assert response.status_code == 302
    flow = Flow.objects.get(owner=user)
    assert flow.pk == echo_flow.pk and flow.name == "Echo" and flow.endpoint_name == "echo"
    assert {node["id"] for node in flow.data["nodes"]} == {node["id"] for node in new["data"]["nodes"]}
    assert "now runs the graph of v2.json" in signed_in.get(response["Location"]).content.decode()


@pytest.mark.parametrize(("content", "message"), [
    ([load_export("echo"), load_export("echo")], "The file holds 2 flows"),
    (b"[]", "The file holds no flow."),
    ({"name": "x"}, "holds no flow graph"),
])
def test_a_replacement_that_is_not_one_flow_changes_nothing(signed_in, echo_flow, content, message):
    before = echo_flow.data
    response = signed_in.post(reverse("flows:replace", args=[echo_flow.pk]), {"file": _file(content, "new.json")})
    assert response.status_code == 400 and message in response.content.decode()
    echo_flow.refresh_from_db()
    assert echo_flow.data == before


def test_a_replacement_that_cannot_run_is_refused_by_component(signed_in, echo_flow):
    response = signed_in.post(reverse("flows:replace", args=[echo_flow.pk]),
                              {"file": _file(load_export("meeting_summary"), "meeting.json")})
    body = response.content.decode()
    assert response.status_code == 400
    assert "meeting.json was not used" in body and "Not supported here: AssemblyAI Transcriber." in body
    echo_flow.refresh_from_db()
    assert [node["data"]["type"] for node in echo_flow.data["nodes"]] == ["ChatInput", "ChatOutput"]


def test_the_export_downloads_as_langflow_json_that_imports_again(signed_in, user, echo_flow):
    response = signed_in.get(reverse("flows:export", args=[echo_flow.pk]))
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="echo.json"'
    exported = json.loads(response.content)
    assert exported["id"] == str(echo_flow.pk) and exported["name"] == "Echo" and exported["data"] == echo_flow.data
    [again] = import_flows(user=user, payload=response.content)
    assert again.name == "Echo (1)"


@pytest.mark.parametrize(("name", "method", "data"), [
    ("flows:settings", "post", {"name": "Mine now", "endpoint_name": "", "description": ""}),
    ("flows:replace", "post", None),
    ("flows:export", "get", None),
])
def test_another_users_flow_cannot_be_changed_or_downloaded(client, other_user, echo_flow, name, method, data):
    client.force_login(other_user)
    if name == "flows:replace":
        data = {"file": _file(load_export("basic_prompting"))}
    response = getattr(client, method)(reverse(name, args=[echo_flow.pk]), data or {})
    assert response.status_code == 404
    echo_flow.refresh_from_db()
    assert echo_flow.name == "Echo" and len(echo_flow.data["nodes"]) == 2


def test_every_new_form_carries_a_csrf_token(signed_in, echo_flow):
    import re

    body = signed_in.get(reverse("flows:detail", args=[echo_flow.pk])).content.decode()
    forms = re.findall(r"<form[^>]*method=\"post\".*?</form>", body, flags=re.S)
    assert len(forms) >= 3
    assert all('name="csrfmiddlewaretoken"' in form for form in forms)


# --- The graph's picture -----------------------------------------------------------------------

def test_the_flow_page_draws_the_graph_as_svg(signed_in, echo_flow):
    body = signed_in.get(reverse("flows:detail", args=[echo_flow.pk])).content.decode()
    assert '<svg class="flow-graph-svg is-scalable"' in body
    assert body.count('<g class="graph-node') == 2 and body.count('<path class="graph-edge"') == 1
    assert "Graph of the flow: 2 components and 1 connection" in body
    assert "<title>Chat Input → Chat Output</title>" in body
    assert "<summary>The components as a list</summary>" in body and "ChatInput-b6UCc" in body


def test_labels_in_the_picture_are_escaped(signed_in, user):
    export = load_export("echo")
    export["data"]["nodes"][0]["data"]["node"]["display_name"] = XSS
    flow = import_flows(user=user, payload=export)[0]
    body = signed_in.get(reverse("flows:detail", args=[flow.pk])).content.decode()
    assert XSS not in body and "&lt;script&gt;alert(1)" in body


def test_unsupported_components_are_marked_in_the_picture(signed_in, user):
    flow = _unsupported(user)
    body = signed_in.get(reverse("flows:detail", args=[flow.pk])).content.decode()
    assert 'class="graph-node is-unsupported"' in body and "Not supported here" in body


def test_the_list_reads_the_graphs_in_one_query_then_from_the_cache(signed_in, user, django_assert_num_queries):
    from flows import services

    for index in range(5):
        Flow.objects.create(owner=user, name=f"stored {index}", data=load_export("meeting_summary")["data"])
    flows = list(Flow.objects.filter(owner=user).defer("data"))
    services._graphs().clear()
    with django_assert_num_queries(1):
        assert len(services.run_problems(flows)) == 5
    with django_assert_num_queries(0):
        assert len(services.run_problems(flows)) == 5


def test_a_component_that_runs_several_types_is_listed_once(signed_in):
    body = signed_in.get(reverse("flows:components")).content.decode()
    assert body.count("<dt>Prompt Template") == 1
    assert '<dt>Prompt Template <code class="small">Prompt</code> <code class="small">Prompt Template</code></dt>' in body
