"""Langflow's /api/v1/monitor/messages routes: owner-scoped, with the keys' read/write permissions and flow scope."""

import uuid

import pytest

from apikeys.access import KeyAccess
from flows import services
from flows.models import Message
from tests.flows.conftest import load_fixture

pytestmark = pytest.mark.django_db

URL = "/api/v1/monitor/messages"


def call(api_client, method, url, key=None, body=None):
    headers = {"HTTP_X_API_KEY": key} if key else {}
    return getattr(api_client, method)(url, body, format="json", **headers)


def say(flow, session_id, *texts, sender="User"):
    return [Message.objects.create(flow=flow, session_id=session_id, text=text, sender=sender, sender_name=sender)
            for text in texts]


@pytest.fixture
def other_flow(other_user):
    [flow] = services.import_flows(user=other_user, payload=load_fixture("echo.json"))
    return flow


@pytest.fixture
def second_flow(user):
    [flow] = services.import_flows(user=user, payload=load_fixture("echo.json"))
    return flow


def test_a_run_s_messages_are_listed_in_langflows_shape(api_client, echo_flow, key):
    call(api_client, "post", f"/api/v1/run/{echo_flow.pk}", key, {"input_value": "hi", "session_id": "s1"})
    response = call(api_client, "get", f"{URL}?flow_id={echo_flow.pk}&session_id=s1", key)
    assert response.status_code == 200
    question, answer = response.json()
    assert (question["sender"], question["text"], answer["sender"], answer["sender_name"]) == ("User", "hi", "Machine", "AI")
    assert set(answer) == {"id", "flow_id", "timestamp", "sender", "sender_name", "session_id", "context_id", "text",
                           "files", "edit", "duration", "properties", "category", "content_blocks"}
    assert answer["files"] == "[]" and answer["flow_id"] == str(echo_flow.pk) and answer["session_id"] == "s1"


def test_the_list_filters_and_orders(api_client, echo_flow, second_flow, key):
    say(echo_flow, "a", "b-text", "a-text")
    say(echo_flow, "b", "other session", sender="Machine")
    say(second_flow, "a", "other flow")
    texts = lambda query: [m["text"] for m in call(api_client, "get", f"{URL}?{query}", key).json()]  # noqa: E731
    assert texts(f"flow_id={echo_flow.pk}") == ["b-text", "a-text", "other session"]
    assert texts("session_id=a") == ["b-text", "a-text", "other flow"]
    assert texts("sender=Machine") == ["other session"]
    assert texts(f"flow_id={echo_flow.pk}&session_id=a&order_by=text") == ["a-text", "b-text"]
    assert texts(f"flow_id={echo_flow.pk}&limit=1&offset=1") == ["a-text"]


@pytest.mark.parametrize("query", ["order_by=password", "limit=0", "limit=1001", "offset=-1", "flow_id=nope",
                                   "session_id=" + "s" * 256])
def test_bad_list_parameters_are_a_422(api_client, key, query):
    response = call(api_client, "get", f"{URL}?{query}", key)
    assert response.status_code == 422 and "detail" in response.json()


def test_a_page_whose_texts_exceed_the_answer_limit_is_refused_before_it_is_read(api_client, echo_flow, key, settings):
    settings.FLOW_MAX_ANSWER_BYTES = 10
    say(echo_flow, "a", "x" * 11)
    response = call(api_client, "get", URL, key)
    assert response.status_code == 422 and "FLOW_MAX_ANSWER_BYTES" in response.json()["detail"]


def test_another_users_messages_are_invisible(api_client, echo_flow, other_flow, key):
    say(other_flow, "a", "theirs")
    say(echo_flow, "a", "mine")
    assert [m["text"] for m in call(api_client, "get", URL, key).json()] == ["mine"]
    assert call(api_client, "get", f"{URL}?flow_id={other_flow.pk}", key).json() == []
    assert call(api_client, "get", f"{URL}/sessions?flow_id={other_flow.pk}", key).json() == []


def test_sessions_are_listed_sorted_and_paged(api_client, echo_flow, second_flow, key):
    say(echo_flow, "zeta", "1", "2")
    say(echo_flow, "alpha", "3")
    say(second_flow, "mid", "4")
    assert call(api_client, "get", f"{URL}/sessions", key).json() == ["alpha", "mid", "zeta"]
    assert call(api_client, "get", f"{URL}/sessions?flow_id={echo_flow.pk}", key).json() == ["alpha", "zeta"]
    assert call(api_client, "get", f"{URL}/sessions?limit=1&offset=1", key).json() == ["mid"]


def test_delete_by_ids_deletes_only_your_own(api_client, echo_flow, other_flow, key):
    [mine, kept] = say(echo_flow, "a", "go", "stay")
    [theirs] = say(other_flow, "a", "not yours")
    response = call(api_client, "delete", URL, key, [str(mine.pk), str(theirs.pk), str(uuid.uuid4())])
    assert response.status_code == 204
    assert set(Message.objects.values_list("text", flat=True)) == {"stay", "not yours"}


@pytest.mark.parametrize("body", [{"ids": []}, "abc", [1, 2], ["not-a-uuid"], [str(uuid.uuid4())] * 501])
def test_delete_refuses_a_body_that_is_not_a_list_of_ids(api_client, key, body):
    response = call(api_client, "delete", URL, key, body)
    assert response.status_code == 422 and "detail" in response.json()


def test_delete_a_session_deletes_only_your_messages_of_it(api_client, echo_flow, second_flow, other_flow, key):
    say(echo_flow, "s", "one")
    say(second_flow, "s", "two")
    say(echo_flow, "t", "kept")
    say(other_flow, "s", "theirs")
    assert call(api_client, "delete", f"{URL}/session/s", key).status_code == 204
    assert set(Message.objects.values_list("text", flat=True)) == {"kept", "theirs"}


def test_delete_sessions_in_bulk_counts_them(api_client, echo_flow, other_flow, key):
    say(echo_flow, "s", "one", "two")
    say(echo_flow, "t", "three")
    say(other_flow, "u", "theirs")
    response = call(api_client, "delete", f"{URL}/sessions", key, ["s", "t", "u"])
    assert response.json() == {"message": "Messages deleted successfully for 2 sessions", "deleted_count": 2}
    assert list(Message.objects.values_list("text", flat=True)) == ["theirs"]


def test_update_changes_a_message_and_marks_an_edited_text(api_client, echo_flow, key):
    [message] = say(echo_flow, "s", "typo")
    response = call(api_client, "put", f"{URL}/{message.pk}", key, {"text": "fixed", "sender_name": None})
    assert response.status_code == 200
    body = response.json()
    assert (body["text"], body["edit"], body["sender_name"], body["files"]) == ("fixed", True, "User", [])
    assert body["timestamp"].endswith(" UTC")
    message.refresh_from_db()
    assert (message.text, message.edit) == ("fixed", True)
    properties = {"positive_feedback": True}
    assert call(api_client, "put", f"{URL}/{message.pk}", key, {"properties": properties}).json()["properties"] == properties


@pytest.mark.parametrize("body", [{"text": {"a": 1}}, {"session_id": ""}, {"files": "a"}, {"edit": "maybe"}])
def test_update_refuses_bad_fields(api_client, echo_flow, key, body):
    [message] = say(echo_flow, "s", "x")
    assert call(api_client, "put", f"{URL}/{message.pk}", key, body).status_code == 422


def test_update_refuses_a_text_over_the_value_limit(api_client, echo_flow, key, settings):
    settings.FLOW_MAX_VALUE_BYTES = 4
    [message] = say(echo_flow, "s", "x")
    response = call(api_client, "put", f"{URL}/{message.pk}", key, {"text": "é" * 3})
    assert response.status_code == 422 and "FLOW_MAX_VALUE_BYTES" in str(response.json())


@pytest.mark.parametrize("which", ["theirs", "missing", "not-an-id"])
def test_updating_another_users_or_a_missing_message_is_the_same_404(api_client, other_flow, key, which):
    [theirs] = say(other_flow, "s", "theirs")
    message_id = {"theirs": theirs.pk, "missing": uuid.uuid4(), "not-an-id": "nope"}[which]
    response = call(api_client, "put", f"{URL}/{message_id}", key, {"text": "hijacked"})
    assert (response.status_code, response.json()) == (404, {"detail": "Message not found"})
    theirs.refresh_from_db()
    assert theirs.text == "theirs"


def test_without_credentials_every_route_is_refused(api_client):
    assert call(api_client, "get", URL).status_code == 403
    assert call(api_client, "delete", f"{URL}/session/s").status_code == 403


def test_a_signed_in_session_works_too(api_client, user, echo_flow):
    say(echo_flow, "s", "mine")
    api_client.force_login(user)
    assert [m["text"] for m in call(api_client, "get", URL).json()] == ["mine"]


# --- Keys' permissions and flow scope ---------------------------------------------------------

def test_a_key_needs_read_to_list_and_write_to_change(api_client, user, echo_flow, make_key):
    [message] = say(echo_flow, "s", "x")
    run_only = make_key(user, access=KeyAccess(permissions=("run",)))[1]
    read_only = make_key(user, access=KeyAccess(permissions=("read",)))[1]
    response = call(api_client, "get", URL, run_only)
    assert (response.status_code, response.json()) == (403, {"detail": "This API key lacks the 'read' permission"})
    assert call(api_client, "get", f"{URL}/sessions", run_only).status_code == 403
    assert call(api_client, "get", URL, read_only).status_code == 200
    for method, url, body in [("put", f"{URL}/{message.pk}", {"text": "y"}), ("delete", URL, [str(message.pk)]),
                              ("delete", f"{URL}/session/s", None), ("delete", f"{URL}/sessions", ["s"])]:
        response = call(api_client, method, url, read_only, body)
        assert (response.status_code, response.json()) == (403, {"detail": "This API key lacks the 'write' permission"})
    assert Message.objects.get().text == "x"


def test_a_key_limited_to_chosen_flows_reaches_only_their_messages(api_client, user, echo_flow, second_flow, make_key):
    [inside] = say(echo_flow, "s", "inside")
    [outside] = say(second_flow, "s", "outside")
    key = make_key(user, access=KeyAccess(all_flows=False, flow_ids=(str(echo_flow.pk),), permissions=("read", "write")))[1]
    assert [m["text"] for m in call(api_client, "get", URL, key).json()] == ["inside"]
    assert call(api_client, "get", f"{URL}?flow_id={second_flow.pk}", key).json() == []
    assert call(api_client, "put", f"{URL}/{outside.pk}", key, {"text": "no"}).status_code == 404
    assert call(api_client, "put", f"{URL}/{inside.pk}", key, {"text": "yes"}).status_code == 200
    assert call(api_client, "delete", f"{URL}/session/s", key).status_code == 204
    assert list(Message.objects.values_list("text", flat=True)) == ["outside"]
