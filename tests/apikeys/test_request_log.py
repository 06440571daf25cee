"""Each key's request log (apikeys.request_log): noted in memory, written in batches after the
answers went out, never a query string; shown on the key's page and paged."""

import datetime
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apikeys import request_log
from apikeys.models import ApiKeyRequest
from apikeys.services import prune_request_log
from flows.models import Flow

pytestmark = pytest.mark.django_db


@pytest.fixture
def log_on(settings):
    """The log as a server runs it, with a batch the tests control."""
    settings.REQUEST_LOG_ENABLED = True
    settings.REQUEST_LOG_FLUSH_SECONDS = 3600
    settings.REQUEST_LOG_BATCH = 1000
    return settings


@pytest.fixture
def flow(user):
    return Flow.objects.create(owner=user, name="Echo", endpoint_name="echo")


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def whoami(api_client, raw, **extra):
    return api_client.get("/api/v1/users/whoami", HTTP_X_API_KEY=raw, **extra)


def test_a_request_writes_nothing_on_its_way_and_is_noted_in_memory(log_on, api_client, user, make_key):
    api_key, raw = make_key(user)
    whoami(api_client, raw)  # warm
    with CaptureQueriesContext(connection) as captured:
        assert whoami(api_client, raw).status_code == 200
    assert not any("apikeys_apikeyrequest" in query["sql"] for query in captured.captured_queries)
    assert len(request_log.pending) == 2
    assert not ApiKeyRequest.objects.exists()


def test_a_flush_writes_method_path_flow_status_and_address_but_never_the_query_string(
        log_on, api_client, user, make_key, flow):
    api_key, raw = make_key(user)
    api_client.get(f"/api/v1/flows/{flow.pk}?x-api-key={raw}", REMOTE_ADDR="203.0.113.5")
    api_client.get("/api/v1/flows/not-a-flow", HTTP_X_API_KEY=raw, REMOTE_ADDR="203.0.113.5")
    assert request_log.flush() == 2
    first, second = ApiKeyRequest.objects.order_by("created_at", "id")
    assert (first.method, first.path, first.flow_ref, first.status, first.client_ip) == (
        "GET", f"/api/v1/flows/{flow.pk}", str(flow.pk), 200, "203.0.113.5")
    assert (second.flow_ref, second.status) == ("not-a-flow", 404)
    for row in ApiKeyRequest.objects.values_list("path", "flow_ref"):
        assert raw not in " ".join(row) and "?" not in row[0]


def test_a_key_pasted_into_the_path_is_masked(log_on, api_client, user, make_key):
    api_key, raw = make_key(user)
    api_client.get(f"/api/v1/flows/{raw}", HTTP_X_API_KEY=raw)
    request_log.flush()
    row = ApiKeyRequest.objects.get()
    assert raw not in row.path and raw not in row.flow_ref
    assert row.path.startswith("/api/v1/flows/lfsk_")


def test_sessions_and_refused_keys_are_not_in_the_request_log(log_on, client, api_client, user, make_key):
    client.force_login(user)
    client.get("/api/v1/users/whoami")
    assert whoami(api_client, "lfsk_" + "A" * 12 + "_" + "B" * 38).status_code == 403
    assert len(request_log.pending) == 0


def test_a_full_batch_is_written_once_the_answer_went_out(log_on, api_client, user, make_key):
    log_on.REQUEST_LOG_BATCH = 3
    api_key, raw = make_key(user)
    whoami(api_client, raw)
    whoami(api_client, raw)
    assert ApiKeyRequest.objects.count() == 0
    whoami(api_client, raw)
    assert ApiKeyRequest.objects.filter(api_key=api_key).count() == 3
    assert len(request_log.pending) == 0


def test_a_batch_old_enough_is_written_at_the_next_answer(log_on, api_client, user, make_key):
    log_on.REQUEST_LOG_FLUSH_SECONDS = 0
    api_key, raw = make_key(user)
    whoami(api_client, raw)
    assert ApiKeyRequest.objects.filter(api_key=api_key, status=200).count() == 1


def test_rows_of_a_key_deleted_meanwhile_are_dropped(log_on, api_client, user, make_key):
    api_key, raw = make_key(user)
    kept, kept_raw = make_key(user)
    whoami(api_client, raw)
    whoami(api_client, kept_raw)
    api_key.delete()
    assert request_log.flush() == 1
    assert list(ApiKeyRequest.objects.values_list("api_key", flat=True)) == [kept.pk]


def test_the_pending_rows_are_bounded(log_on, user, make_key, monkeypatch):
    monkeypatch.setattr(request_log, "MAX_PENDING", 3)
    api_key, _ = make_key(user)
    for number in range(5):
        request_log.pending.add(request_log.Entry(api_key.pk, timezone.now(), "GET", f"/{number}", "", 200, None))
    assert [entry.path for entry in request_log.pending.take()] == ["/2", "/3", "/4"]


def test_the_key_page_shows_the_latest_requests_with_their_flow(log_on, api_client, signed_in, user, make_key, flow):
    api_key, raw = make_key(user)
    ApiKeyRequest.objects.create(api_key=api_key, method="POST", path="/api/v1/run/echo", flow_ref="echo", status=422,
                                 created_at=timezone.now() - datetime.timedelta(minutes=1))
    api_client.get(f"/api/v1/flows/{flow.pk}", HTTP_X_API_KEY=raw)
    body = signed_in.get(reverse("apikeys:detail", args=[api_key.pk])).content.decode()  # writes the batch first
    table = re.search(r'<table class="data-table request-table">.*?</table>', body, re.S).group(0)
    newest, older = table.split("<tbody>")[1].split("</tr>")[:2]
    assert f"GET /api/v1/flows/{flow.pk}" in newest and ">200<" in newest
    assert f'<a href="{reverse("flows:detail", args=[flow.pk])}">Echo</a>' in newest
    assert "POST /api/v1/run/echo" in older and ">422<" in older and ">Echo</a>" in older  # by endpoint name
    assert raw not in body


def test_another_users_flow_named_in_a_url_is_not_linked(log_on, signed_in, user, other_user, make_key):
    theirs = Flow.objects.create(owner=other_user, name="Their secret flow")
    api_key, _ = make_key(user)
    ApiKeyRequest.objects.create(api_key=api_key, method="GET", path=f"/api/v1/flows/{theirs.pk}",
                                 flow_ref=str(theirs.pk), status=404)
    body = signed_in.get(reverse("apikeys:detail", args=[api_key.pk])).content.decode()
    assert "Their secret flow" not in body


def test_the_requests_page_pages_by_50_newest_first(log_on, signed_in, user, make_key):
    api_key, _ = make_key(user)
    start = timezone.now() - datetime.timedelta(hours=1)
    ApiKeyRequest.objects.bulk_create([
        ApiKeyRequest(api_key=api_key, method="POST", path=f"/api/v1/run/n{number}", status=200,
                      created_at=start + datetime.timedelta(seconds=number)) for number in range(60)])
    detail = signed_in.get(reverse("apikeys:detail", args=[api_key.pk])).content.decode()
    assert detail.count("/api/v1/run/n") == 10 and "All requests" in detail
    first = signed_in.get(reverse("apikeys:requests", args=[api_key.pk])).content.decode()
    assert first.count("/api/v1/run/n") == 50 and "/api/v1/run/n59<" in first and "Page 1 of 2" in first
    second = signed_in.get(reverse("apikeys:requests", args=[api_key.pk]), {"page": 2}).content.decode()
    assert second.count("/api/v1/run/n") == 10 and "/api/v1/run/n0<" in second


def test_old_rows_are_pruned(settings, user, make_key):
    settings.REQUEST_LOG_RETENTION_DAYS = 30
    api_key, _ = make_key(user)
    now = timezone.now()
    for days in (0, 29, 31, 400):
        ApiKeyRequest.objects.create(api_key=api_key, method="GET", path="/", status=200,
                                     created_at=now - datetime.timedelta(days=days))
    assert prune_request_log(now=now) == 2
    assert ApiKeyRequest.objects.count() == 2
