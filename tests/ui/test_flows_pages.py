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


def _upload(client, content: bytes, filename="flow.json"):
    return client.post(IMPORT, {"file": SimpleUploadedFile(filename, content, content_type="application/json")})


@pytest.fixture
def echo_flow(user):
    return import_flows(user=user, payload=load_export("echo"))[0]


def test_the_empty_list_invites_an_import(signed_in):
    body = signed_in.get(LIST).content.decode()
    assert "No flows yet" in body and f'href="{IMPORT}"' in body


def test_the_import_page_without_javascript_shows_the_dialog_open(signed_in):
    body = signed_in.get(IMPORT).content.decode()
    assert '<dialog id="import-flow-dialog"' in body and " open data-open-on-load" in body
    assert 'enctype="multipart/form-data"' in body


def test_importing_an_export_opens_the_new_flow(signed_in, user):
    response = _upload(signed_in, json.dumps(load_export("echo")).encode())
    flow = Flow.objects.get(owner=user)
    assert response.status_code == 302 and response["Location"] == reverse("flows:detail", args=[flow.pk])
    body = signed_in.get(response["Location"]).content.decode()
    assert "Imported “Echo”." in body
    assert "Chat Input" in body and "Chat Output" in body and "ChatInput-b6UCc" in body


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "The file is not valid JSON: Expecting property name"),
        (b"", "The file is empty."),
        (json.dumps({"name": "x", "data": {"nodes": "no"}}).encode(), "&#x27;nodes&#x27; must be a list"),
    ],
)
def test_a_bad_file_is_a_clear_form_error(signed_in, user, content, message):
    response = _upload(signed_in, content)
    body = response.content.decode()
    assert response.status_code == 400
    assert message in body
    assert " open data-open-on-load" in body
    assert not Flow.objects.filter(owner=user).exists()


def test_unsupported_components_are_refused_by_name_and_nothing_is_stored(signed_in, user):
    payload = [load_export("echo"), load_export("meeting_summary")]
    response = _upload(signed_in, json.dumps(payload).encode())
    body = response.content.decode()
    assert response.status_code == 400
    assert "cannot run here" in body and "AssemblyAITranscriber (node AAITranscriber-ms)" in body
    assert not Flow.objects.filter(owner=user).exists()


def test_no_file_is_a_form_error(signed_in):
    response = signed_in.post(IMPORT, {})
    assert response.status_code == 400
    assert "Choose a .json file to import." in response.content.decode()


def test_the_api_panel_has_ready_snippets_with_a_placeholder_and_no_real_key(signed_in, user, echo_flow, make_key):
    _api_key, raw = make_key(user)
    body = signed_in.get(reverse("flows:detail", args=[echo_flow.pk])).content.decode()
    url = f"http://testserver/api/v1/run/{echo_flow.pk}"
    assert f'curl -X POST "{url}?stream=false"' in body
    assert f'url = "{url}"' in body and "import requests" in body
    assert f'fetch("{url}"' in body
    assert body.count("x-api-key") >= 3 and "LANGFLOW_API_KEY" in body
    assert raw not in body and "lfsk_" not in body


def test_the_run_box_runs_the_flow_without_javascript(signed_in, echo_flow):
    response = signed_in.post(reverse("flows:run", args=[echo_flow.pk]), {"input_value": "hello <b>there</b>"})
    body = response.content.decode()
    assert response.status_code == 200
    assert "<pre>hello &lt;b&gt;there&lt;/b&gt;</pre>" in body


def test_the_run_box_answers_json_to_the_script(signed_in, echo_flow):
    response = signed_in.post(
        reverse("flows:run", args=[echo_flow.pk]), {"input_value": "hi"}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 200 and response.json() == {"output": "hi", "session_id": str(echo_flow.pk)}


def test_a_flow_that_cannot_run_shows_why(signed_in, user):
    flow = Flow.objects.create(owner=user, name="meeting", data=load_export("meeting_summary")["data"])
    response = signed_in.post(reverse("flows:run", args=[flow.pk]), {"input_value": "hi"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 422
    assert "does not support" in response.json()["detail"]


def test_delete_asks_for_confirmation_then_deletes(signed_in, echo_flow):
    url = reverse("flows:delete", args=[echo_flow.pk])
    confirm = signed_in.get(url).content.decode()
    assert "Delete flow?" in confirm and "Echo" in confirm
    assert Flow.objects.filter(pk=echo_flow.pk).exists()
    response = signed_in.post(url, follow=True)
    assert "The flow “Echo” was deleted." in response.content.decode()
    assert not Flow.objects.filter(pk=echo_flow.pk).exists()


@pytest.mark.parametrize(
    ("name", "method", "data"),
    [("flows:detail", "get", None), ("flows:delete", "get", None), ("flows:delete", "post", None),
     ("flows:run", "post", {"input_value": "hi"})],
)
def test_another_users_flow_answers_404(client, other_user, echo_flow, name, method, data):
    client.force_login(other_user)
    response = getattr(client, method)(reverse(name, args=[echo_flow.pk]), data or {})
    assert response.status_code == 404
    assert Flow.objects.filter(pk=echo_flow.pk).exists()


def test_a_user_never_sees_another_users_flows(client, other_user, echo_flow):
    client.force_login(other_user)
    assert "Echo" not in client.get(LIST).content.decode()


def test_a_flow_named_like_a_script_is_escaped(signed_in, user):
    export = load_export("echo") | {"name": XSS, "description": XSS}
    _upload(signed_in, json.dumps(export).encode())
    flow = Flow.objects.get(owner=user)
    for url in (LIST, reverse("flows:detail", args=[flow.pk]), reverse("flows:delete", args=[flow.pk])):
        body = signed_in.get(url).content.decode()
        assert XSS not in body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
