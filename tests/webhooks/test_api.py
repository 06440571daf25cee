"""POST /api/v1/webhook/<flow> and GET /api/v1/webhook/<flow>/runs: Langflow's answer, the raw body
handed to the Webhook component, and the same key limits as /run."""

import json

import pytest

from apikeys.access import KeyAccess
from apikeys.models import ApiKey, ApiKeyEvent
from flows import services as flow_services
from flows.models import Message
from tests.flows.graphs import chat_in, chat_out, edge, flow_data
from tests.webhooks.conftest import webhook_flow_data
from webhooks.models import WebhookRun

pytestmark = pytest.mark.django_db

ACCEPTED = {"message": "Task started in the background", "status": "in progress"}
NOT_FOUND = {"detail": "Flow not found"}
HOME = "203.0.113.9"
ELSEWHERE = "198.51.100.7"


def post(api_client, flow_ref, body=b'{"name": "Ada"}', *, key=None, query_key=None,
         content_type="application/json", **extra):
    url = f"/api/v1/webhook/{flow_ref}"
    if query_key is not None:
        url += f"?x-api-key={query_key}"
    if key is not None:
        extra["HTTP_X_API_KEY"] = key
    return api_client.generic("POST", url, body, content_type=content_type, **extra)


def only_run() -> WebhookRun:
    [run] = WebhookRun.objects.all()
    return run


def chat_texts() -> list[str]:
    return list(Message.objects.order_by("timestamp").values_list("text", flat=True))


# --- The answer and what the flow receives -------------------------------------------------------

def test_a_call_answers_langflows_202_and_records_a_received_run_with_its_job(api_client, webhook_flow, key):
    from django_tasks_db.models import DBTaskResult

    response = post(api_client, webhook_flow.pk, key=key)
    assert response.status_code == 202
    assert response.json() == ACCEPTED
    run = only_run()
    assert (run.flow_id, run.status, run.attempts, run.body) == (webhook_flow.pk, "received", 0, '{"name": "Ada"}')
    job = DBTaskResult.objects.get(pk=run.task_id)
    assert job.status == "READY" and job.args_kwargs["args"] == [str(run.pk), 1]
    assert chat_texts() == []  # nothing ran during the request


def test_the_endpoint_name_names_the_flow_too(api_client, webhook_flow, key):
    assert post(api_client, "hook", key=key).status_code == 202
    assert only_run().flow_id == webhook_flow.pk


def test_the_raw_body_reaches_the_webhook_component_as_data(api_client, webhook_flow, key, run_jobs):
    post(api_client, webhook_flow.pk, b'{"name": "Ada", "n": [1, 2]}', key=key)
    run_jobs()
    assert only_run().status == "done"
    assert [json.loads(text) for text in chat_texts()] == [{"name": "Ada", "n": [1, 2]}]


def test_a_pattern_reads_the_bodys_fields(api_client, user, key, run_jobs):
    flow = flow_services.create_flow(owner=user, name="Greeter",
                                     data=webhook_flow_data(mode="Parser", pattern="Hello {name}"))
    post(api_client, flow.pk, b'{"name": "Ada"}', key=key)
    run_jobs()
    assert chat_texts() == ["Hello Ada"]


@pytest.mark.parametrize("body", [b"not json {", b"name=Ada&x=1", b"\xff\xfebinary"])
def test_a_body_that_is_not_json_is_accepted_as_text(api_client, webhook_flow, key, run_jobs, body):
    response = post(api_client, webhook_flow.pk, body, key=key, content_type="text/plain")
    assert response.status_code == 202
    run_jobs()
    assert only_run().status == "done"
    [text] = chat_texts()
    assert json.loads(text) == {"payload": body.decode("utf-8", errors="replace")}


def test_the_body_is_read_whatever_the_content_type_says(api_client, webhook_flow, key, run_jobs):
    post(api_client, webhook_flow.pk, b'{"a": 1}', key=key, content_type="application/x-www-form-urlencoded")
    run_jobs()
    assert [json.loads(text) for text in chat_texts()] == [{"a": 1}]


def test_an_empty_body_is_refused_as_langflow_does(api_client, webhook_flow, key):
    response = post(api_client, webhook_flow.pk, b"", key=key)
    assert response.status_code == 400
    assert "Request body is empty" in response.json()["detail"]
    assert not WebhookRun.objects.exists()


def test_a_body_above_the_limit_is_refused_with_413_and_nothing_is_recorded(api_client, webhook_flow, key, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 100
    assert post(api_client, webhook_flow.pk, b"x" * 100, key=key).status_code == 202
    response = post(api_client, webhook_flow.pk, b"x" * 101, key=key)
    assert response.status_code == 413
    assert "100 bytes" in response.json()["detail"]
    assert WebhookRun.objects.count() == 1


def test_a_body_declaring_more_than_the_limit_is_refused_before_it_is_read(api_client, webhook_flow, key, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 100
    response = api_client.generic("POST", f"/api/v1/webhook/{webhook_flow.pk}", b"{}",
                                  content_type="application/json", HTTP_X_API_KEY=key, CONTENT_LENGTH="101")
    assert response.status_code == 413
    assert not WebhookRun.objects.exists()


def test_a_flow_without_a_webhook_component_is_refused_before_anything_is_queued(api_client, user, key):
    flow = flow_services.create_flow(owner=user, name="Chat", data=flow_data(
        chat_in(), chat_out(), edge("ChatInput-1", "message", "ChatOutput-1", "input_value")))
    response = post(api_client, flow.pk, key=key)
    assert response.status_code == 422
    assert "no Webhook component" in response.json()["detail"]
    assert not WebhookRun.objects.exists()


def test_a_flow_that_cannot_run_is_refused_naming_the_node(api_client, user, key):
    data = webhook_flow_data()
    data["nodes"].append({"id": "Mystery-1", "data": {"id": "Mystery-1", "type": "NoSuchComponent",
                                                      "node": {"template": {}}}})
    flow = flow_services.create_flow(owner=user, name="Unsupported", data=data)
    response = post(api_client, flow.pk, key=key)
    assert response.status_code == 422
    assert "Mystery-1" in json.dumps(response.json())


# --- Keys: required by default, the header wins, and /run's limits -------------------------------

def test_a_call_without_a_key_is_refused_as_run_refuses_it(api_client, webhook_flow):
    response = post(api_client, webhook_flow.pk)
    run = api_client.post(f"/api/v1/run/{webhook_flow.pk}", {}, format="json")
    assert response.status_code == run.status_code == 403
    assert response.json() == run.json()
    assert not WebhookRun.objects.exists()


def test_the_header_key_wins_over_the_query_key(api_client, webhook_flow, key):
    assert post(api_client, webhook_flow.pk, key=key, query_key="lfsk_wrong_key").status_code == 202
    refused = post(api_client, webhook_flow.pk, key="lfsk_wrong_key", query_key=key)
    assert refused.status_code == 403
    assert refused.json() == {"detail": "Invalid or missing API key"}
    assert WebhookRun.objects.count() == 1


def test_the_query_key_alone_works(api_client, webhook_flow, key):
    assert post(api_client, webhook_flow.pk, query_key=key).status_code == 202


def test_with_webhook_auth_off_a_call_without_a_key_runs_the_flow_as_its_owner(
        api_client, webhook_flow, settings, run_jobs):
    settings.LANGFLOW_WEBHOOK_AUTH_ENABLE = False
    assert post(api_client, webhook_flow.pk).status_code == 202
    assert post(api_client, "hook").status_code == 202
    run_jobs()
    assert list(WebhookRun.objects.values_list("status", flat=True)) == ["done", "done"]


def test_with_webhook_auth_off_a_wrong_key_is_still_refused(api_client, webhook_flow, settings):
    settings.LANGFLOW_WEBHOOK_AUTH_ENABLE = False
    assert post(api_client, webhook_flow.pk, key="lfsk_wrong_key").status_code == 403
    assert not WebhookRun.objects.exists()


def test_with_webhook_auth_off_an_endpoint_name_two_owners_use_names_no_flow(
        api_client, webhook_flow, other_user, settings):
    settings.LANGFLOW_WEBHOOK_AUTH_ENABLE = False
    flow_services.create_flow(owner=other_user, name="Hook", endpoint_name="hook", data=webhook_flow_data())
    assert post(api_client, "hook").json() == NOT_FOUND
    assert post(api_client, webhook_flow.pk).status_code == 202  # its id still does


def test_another_users_flow_is_not_found(api_client, webhook_flow, other_user, make_key):
    other_key = make_key(other_user)[1]
    response = post(api_client, webhook_flow.pk, key=other_key)
    assert (response.status_code, response.json()) == (404, NOT_FOUND)
    assert post(api_client, "hook", key=other_key).json() == NOT_FOUND


def test_a_key_limited_to_other_flows_gets_flow_not_found(api_client, user, webhook_flow, make_key):
    elsewhere = flow_services.create_flow(owner=user, name="Other", data=webhook_flow_data())
    key = make_key(user, access=KeyAccess(all_flows=False, flow_ids=(str(elsewhere.pk),)))[1]
    response = post(api_client, webhook_flow.pk, key=key)
    assert (response.status_code, response.json()) == (404, NOT_FOUND)
    assert post(api_client, elsewhere.pk, key=key).status_code == 202


@pytest.mark.parametrize(("permissions", "status"), [(("read", "write"), 403), (("run",), 202)])
def test_a_call_needs_the_run_permission(api_client, user, webhook_flow, make_key, permissions, status):
    key = make_key(user, access=KeyAccess(permissions=permissions))[1]
    response = post(api_client, webhook_flow.pk, key=key)
    assert response.status_code == status
    if status == 403:
        assert response.json() == {"detail": "This API key lacks the 'run' permission"}


def test_a_key_limited_to_other_addresses_is_refused_and_audited(api_client, user, webhook_flow, make_key):
    key = make_key(user, access=KeyAccess(allowed_ips=(f"{HOME}/32",)))[1]
    refused = post(api_client, webhook_flow.pk, key=key, REMOTE_ADDR=ELSEWHERE)
    assert refused.json() == {"detail": "This API key may not be used from your address."}
    assert ApiKeyEvent.objects.filter(kind=ApiKeyEvent.Kind.AUTH_FAILED).count() == 1
    assert post(api_client, webhook_flow.pk, key=key, REMOTE_ADDR=HOME).status_code == 202


def test_the_keys_rate_limit_holds(api_client, webhook_flow, key, settings):
    settings.API_KEY_RATE = "2/min"
    statuses = [post(api_client, webhook_flow.pk, key=key).status_code for _ in range(3)]
    assert statuses == [202, 202, 429]
    assert WebhookRun.objects.count() == 2


def test_each_call_counts_as_a_use_of_the_key(api_client, user, webhook_flow, make_key):
    api_key, raw = make_key(user)
    for _ in range(3):
        post(api_client, webhook_flow.pk, key=raw)
    assert ApiKey.objects.get(pk=api_key.pk).total_uses == 3


# --- The runs: JSON route and the flow's page ---------------------------------------------------

def runs(api_client, flow_ref, key, query=""):
    return api_client.get(f"/api/v1/webhook/{flow_ref}/runs{query}", HTTP_X_API_KEY=key)


def test_the_runs_route_lists_the_flows_runs_newest_first_with_their_state(api_client, webhook_flow, key, run_jobs):
    post(api_client, webhook_flow.pk, b'{"first": 1}', key=key)
    run_jobs()
    post(api_client, webhook_flow.pk, b'{"second": 2}', key=key)
    answer = runs(api_client, webhook_flow.pk, key).json()
    assert answer["total_count"] == 2
    assert [run["status"] for run in answer["runs"]] == ["received", "done"]
    done = answer["runs"][1]
    assert done["attempts"] == 1 and done["error"] == "" and done["started_at"] and done["finished_at"]
    assert "body" not in done


def test_the_runs_route_pages_and_filters(api_client, webhook_flow, key, run_jobs):
    for index in range(5):
        post(api_client, webhook_flow.pk, json.dumps({"i": index}).encode(), key=key)
    page = runs(api_client, "hook", key, "?page=2&size=2").json()
    assert (page["total_count"], page["page"], page["size"], len(page["runs"])) == (5, 2, 2, 2)
    assert runs(api_client, webhook_flow.pk, key, "?status=done").json()["total_count"] == 0
    assert runs(api_client, webhook_flow.pk, key, "?size=1000").status_code == 422


def test_the_runs_route_needs_read_and_shows_another_users_flow_as_missing(
        api_client, user, other_user, webhook_flow, make_key):
    run_only = make_key(user, access=KeyAccess(permissions=("run",)))[1]
    assert runs(api_client, webhook_flow.pk, run_only).json() == {"detail": "This API key lacks the 'read' permission"}
    assert runs(api_client, webhook_flow.pk, make_key(other_user)[1]).json() == NOT_FOUND
    assert api_client.get(f"/api/v1/webhook/{webhook_flow.pk}/runs").status_code == 403


def test_the_flow_page_shows_its_webhook_runs_with_their_errors(client, user, webhook_flow):
    WebhookRun.objects.create(flow=webhook_flow, body="{}", status="failed", attempts=5,
                              error="Node LanguageModel-1: the model server answered 500")
    client.force_login(user)
    page = client.get(f"/flows/{webhook_flow.pk}/").content.decode()
    assert "Webhook runs" in page
    assert "Failed" in page and "the model server answered 500" in page
    assert "/api/v1/webhook/hook" in page
