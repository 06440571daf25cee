"""The key-management REST API: Langflow's shapes, session-only, owner-scoped, with CSRF."""

import datetime
import uuid

import pytest
from django.middleware.csrf import _get_new_csrf_string
from django.utils import timezone
from rest_framework.test import APIClient

from apikeys import crypto
from apikeys.audit import describe
from apikeys.models import ApiKey, ApiKeyEvent
from apikeys.services import authenticate_api_key, revoke_api_key

pytestmark = pytest.mark.django_db

KEYS = "/api/v1/api_key/"
WHOAMI = "/api/v1/users/whoami"
API_KEY_REFUSED = {"detail": "API keys cannot manage API keys; sign in to manage them."}
SIGN_IN = {"detail": "Sign in to manage API keys."}
LANGFLOW_CREATE_FIELDS = {"name", "last_used_at", "total_uses", "is_active", "expires_at", "id", "api_key", "user_id"}
LANGFLOW_LIST_FIELDS = LANGFLOW_CREATE_FIELDS | {"created_at"}


@pytest.fixture
def session(user):
    client = APIClient()
    client.force_login(user)
    return client


def test_create_answers_200_with_langflows_fields_and_the_full_key_once(session, user):
    response = session.post(KEYS, {"name": "bench"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert LANGFLOW_CREATE_FIELDS <= set(body)
    assert body["name"] == "bench" and body["total_uses"] == 0 and body["is_active"] is True
    assert body["expires_at"] is None and body["last_used_at"] is None
    assert body["user_id"] == str(user.pk)
    assert response["Cache-Control"] == "no-store"
    assert authenticate_api_key(body["api_key"]).pk == uuid.UUID(body["id"])
    listed = session.get(KEYS).json()["api_keys"][0]
    assert listed["api_key"] != body["api_key"] and listed["api_key"].endswith("*" * 8)
    assert body["api_key"] not in session.get(KEYS).content.decode()


def test_create_with_an_expiry(session):
    expires_at = (timezone.now() + datetime.timedelta(days=30)).replace(microsecond=0)
    body = session.post(KEYS, {"name": "month", "expires_at": expires_at.isoformat()}, format="json").json()
    assert ApiKey.objects.get(pk=body["id"]).expires_at == expires_at


def test_create_without_a_body_makes_an_unnamed_key(session):
    response = session.post(KEYS, {}, format="json")
    assert response.status_code == 200 and response.json()["name"] == ""


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"name": "x" * 101}, "name"),
        ({"name": 5 * [1]}, "name"),
        ({"expires_at": "yesterday"}, "expires_at"),
        ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": "9999-12-31T23:59:59Z"}, "expires_at"),
        ({"name": "nul\x00byte"}, "name"),
    ],
)
def test_create_refuses_bad_fields_with_422(session, payload, field):
    response = session.post(KEYS, payload, format="json")
    assert response.status_code == 422
    assert field in response.json()["errors"]
    assert ApiKey.objects.count() == 0


def test_create_refuses_a_body_that_is_not_json(session):
    response = session.post(KEYS, "name=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415 and "detail" in response.json()
    response = session.post(KEYS, "{not json", content_type="application/json")
    assert response.status_code == 400 and "detail" in response.json()


def test_list_answers_langflows_shape_with_masked_keys(session, user, other_user, make_key):
    mine, raw = make_key(user, name="mine")
    make_key(other_user, name="theirs")
    response = session.get(KEYS)
    assert response.status_code == 200
    body = response.json()
    assert body["total_count"] == 1 and body["user_id"] == str(user.pk)
    (listed,) = body["api_keys"]
    assert LANGFLOW_LIST_FIELDS <= set(listed)
    assert listed["id"] == str(mine.pk) and listed["api_key"] == mine.masked
    assert listed["state"] == "active" and listed["revoked_by"] is None
    assert raw not in response.content.decode() and mine.digest not in response.content.decode()


def test_list_shows_each_state(session, user, make_key):
    revoked, _ = make_key(user, name="revoked")
    revoke_api_key(revoked)
    leaked, _ = make_key(user, name="leaked")
    revoke_api_key(leaked, revoked_by=ApiKey.RevokedBy.LEAK_REPORT)
    make_key(user, name="expired", expires_at=timezone.now() - datetime.timedelta(days=1))
    make_key(user, name="active")
    keys = {k["name"]: k for k in session.get(KEYS).json()["api_keys"]}
    assert {name: (k["state"], k["is_active"]) for name, k in keys.items()} == {
        "revoked": ("revoked", False),
        "leaked": ("reported leaked", False),
        "expired": ("expired", False),
        "active": ("active", True),
    }
    assert keys["leaked"]["revoked_by"] == "leak_report"


def test_delete_revokes_the_key_at_once_and_answers_like_langflow(session, user, make_key):
    api_key, raw = make_key(user)
    response = session.delete(f"{KEYS}{api_key.pk}")
    assert response.status_code == 200 and response.json() == {"detail": "API Key deleted"}
    assert APIClient().get(WHOAMI, HTTP_X_API_KEY=raw).status_code == 403
    api_key.refresh_from_db()
    assert api_key.revoked_by == "owner"
    event = api_key.events.get(kind="revoked")
    assert event.actor == "owner" and event.actor_user == user and event.client_ip == "127.0.0.1"
    # Deleting again is harmless and logs nothing more.
    assert session.delete(f"{KEYS}{api_key.pk}").json() == {"detail": "API Key deleted"}
    assert api_key.events.filter(kind="revoked").count() == 1


def test_another_users_key_answers_like_a_missing_one(session, other_user, make_key):
    theirs, raw = make_key(other_user)
    missing = uuid.uuid4()
    for method, suffix in [("get", ""), ("delete", ""), ("post", "/rotate")]:
        answers = [getattr(session, method)(f"{KEYS}{key_id}{suffix}", {}, format="json") for key_id in (theirs.pk, missing)]
        assert [a.status_code for a in answers] == [404, 404]
        assert answers[0].json() == answers[1].json() == {"detail": "API key not found"}
    theirs.refresh_from_db()
    assert theirs.is_usable and authenticate_api_key(raw).pk == theirs.pk


def test_an_id_that_is_no_uuid_is_a_json_404(session):
    response = session.delete(f"{KEYS}not-a-uuid")
    assert response.status_code == 404 and response.json() == {"detail": "Not found."}


def test_show_one_key(session, user, make_key):
    api_key, raw = make_key(user, name="one")
    response = session.get(f"{KEYS}{api_key.pk}")
    assert response.status_code == 200 and response.json()["name"] == "one"
    assert raw not in response.content.decode()


@pytest.mark.parametrize(
    "method, path, payload",
    [
        ("get", "", None),
        ("post", "", {"name": "minted"}),
        ("get", "{id}", None),
        ("delete", "{id}", None),
        ("post", "{id}/rotate", {}),
    ],
)
@pytest.mark.parametrize("where", ["header", "query"])
def test_a_valid_api_key_cannot_manage_keys(api_client, user, make_key, method, path, payload, where):
    api_key, raw = make_key(user)
    url = KEYS + path.format(id=api_key.pk)
    kwargs = {"HTTP_X_API_KEY": raw} if where == "header" else {}
    if where == "query":
        url += f"?x-api-key={raw}"
    response = getattr(api_client, method)(url, payload, format="json", **kwargs)
    assert response.status_code == 403 and response.json() == API_KEY_REFUSED
    api_key.refresh_from_db()
    assert ApiKey.objects.count() == 1 and api_key.is_usable and api_key.rotated_at is None


def test_a_key_does_not_win_over_the_refusal_even_with_a_session(session, user, make_key):
    _, raw = make_key(user)
    response = session.post(KEYS, {"name": "minted"}, format="json", HTTP_X_API_KEY=raw)
    assert response.status_code == 403 and response.json() == API_KEY_REFUSED
    assert ApiKey.objects.count() == 1


def test_an_invalid_key_gets_the_usual_refusal(api_client):
    response = api_client.get(KEYS, HTTP_X_API_KEY="lfsk_nope")
    assert response.status_code == 403 and response.json() == {"detail": "Invalid or missing API key"}


@pytest.mark.parametrize("method, path", [("get", ""), ("post", ""), ("delete", "{id}"), ("post", "{id}/rotate")])
def test_without_a_session_managing_keys_asks_to_sign_in(api_client, user, make_key, method, path):
    api_key, _ = make_key(user)
    response = getattr(api_client, method)(KEYS + path.format(id=api_key.pk), {}, format="json")
    assert response.status_code == 403 and response.json() == SIGN_IN


def test_session_writes_need_the_csrf_token(user, make_key):
    api_key, _ = make_key(user)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    for method, path in [("post", ""), ("delete", str(api_key.pk)), ("post", f"{api_key.pk}/rotate")]:
        response = getattr(client, method)(KEYS + path, {}, format="json")
        assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    assert ApiKey.objects.count() == 1 and ApiKey.objects.get().is_usable
    assert client.get(KEYS).status_code == 200  # reads need no token

    token = _get_new_csrf_string()
    client.cookies["csrftoken"] = token
    response = client.post(KEYS, {"name": "with token"}, format="json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200


def test_rotate_issues_a_new_secret_once_and_the_old_one_stops_at_once(session, user, make_key):
    api_key, old = make_key(user, name="rotating")
    response = session.post(f"{KEYS}{api_key.pk}/rotate", {}, format="json")
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    body = response.json()
    new = body["api_key"]
    assert body["id"] == str(api_key.pk) and body["name"] == "rotating"
    assert new != old and new.startswith(f"lfsk_{api_key.lookup_id}_")
    assert body["previous_key_valid_until"] is None and body["rotated_at"] is not None
    assert APIClient().get(WHOAMI, HTTP_X_API_KEY=old).status_code == 403
    assert APIClient().get(WHOAMI, HTTP_X_API_KEY=new).status_code == 200
    assert new not in session.get(f"{KEYS}{api_key.pk}").content.decode()


def test_rotate_with_a_grace_period_keeps_the_old_secret_working_until_then(session, user, make_key):
    api_key, old = make_key(user)
    before = timezone.now()
    body = session.post(f"{KEYS}{api_key.pk}/rotate", {"grace_period_hours": 24}, format="json").json()
    valid_until = datetime.datetime.fromisoformat(body["previous_key_valid_until"])
    assert before + datetime.timedelta(hours=24) <= valid_until <= timezone.now() + datetime.timedelta(hours=24)
    assert APIClient().get(WHOAMI, HTTP_X_API_KEY=old).status_code == 200
    assert APIClient().get(WHOAMI, HTTP_X_API_KEY=body["api_key"]).status_code == 200


@pytest.mark.parametrize("grace", [-1, 169, "soon", 1.5])
def test_rotate_refuses_a_grace_period_outside_0_to_7_days(session, user, make_key, grace):
    api_key, old = make_key(user)
    response = session.post(f"{KEYS}{api_key.pk}/rotate", {"grace_period_hours": grace}, format="json")
    assert response.status_code == 422 and "grace_period_hours" in response.json()["errors"]
    api_key.refresh_from_db()
    assert api_key.rotated_at is None and authenticate_api_key(old)


@pytest.mark.parametrize("state", ["revoked", "expired"])
def test_rotate_refuses_a_revoked_or_expired_key_with_409(session, user, make_key, state):
    if state == "revoked":
        api_key, _ = make_key(user)
        revoke_api_key(api_key)
    else:
        api_key, _ = make_key(user, expires_at=timezone.now() - datetime.timedelta(seconds=1))
    response = session.post(f"{KEYS}{api_key.pk}/rotate", {}, format="json")
    assert response.status_code == 409 and state in response.json()["detail"]
    assert not ApiKeyEvent.objects.filter(kind="rotated").exists()


def test_create_and_rotate_are_in_the_audit_log_with_who_and_where(session, user):
    body = session.post(KEYS, {"name": "audited"}, format="json").json()
    session.post(f"{KEYS}{body['id']}/rotate", {"grace_period_hours": 1}, format="json")
    events = list(ApiKeyEvent.objects.filter(api_key_id=body["id"]).order_by("created_at", "id"))
    assert [(e.kind, e.actor, e.actor_user, e.client_ip) for e in events] == [
        ("created", "owner", user, "127.0.0.1"),
        ("rotated", "owner", user, "127.0.0.1"),
    ]
    until = ApiKey.objects.get(pk=body["id"]).previous_valid_until
    assert events[1].data == {"previous_valid_until": until.isoformat()}
    assert describe(events[1]) == f"previous secret valid until {until:%Y-%m-%d %H:%M} UTC"


# Reporting a leaked key: no sign-in, same answer always, rate limited.

LEAK = "/api/v1/api_key/revoke-leaked"


def test_reporting_a_leaked_key_revokes_it_and_marks_it_reported(api_client, user, make_key):
    api_key, raw = make_key(user)
    response = api_client.post(LEAK, {"api_key": raw}, format="json")
    assert response.status_code == 200
    api_key.refresh_from_db()
    assert api_key.state == "reported leaked" and api_key.revoked_by == "leak_report"
    assert api_client.get(WHOAMI, HTTP_X_API_KEY=raw).status_code == 403
    event = api_key.events.get(kind="revoked")
    assert event.actor == "leak_report" and event.actor_user is None and event.client_ip == "127.0.0.1"
    assert event.data == {} and raw not in repr(list(ApiKeyEvent.objects.values_list()))


def test_the_leak_report_answer_is_the_same_whether_or_not_the_key_existed(api_client, user, make_key):
    api_key, raw = make_key(user)
    revoked, revoked_raw = make_key(user)
    revoke_api_key(revoked)
    candidates = [
        raw,
        raw,  # reported twice
        revoked_raw,
        crypto.build_key(api_key.lookup_id, "s" * 32),  # right id, wrong secret
        crypto.build_key("Q" * 12, "s" * 32),  # unknown id
        "lfsk_malformed",
        "sk-a-langflow-key",
    ]
    answers = [api_client.post(LEAK, {"api_key": c}, format="json") for c in candidates]
    assert {(a.status_code, a.content) for a in answers} == {(answers[0].status_code, answers[0].content)}
    revoked.refresh_from_db()
    assert revoked.revoked_by == "owner"  # an owner's revocation is not rewritten


def test_a_wrong_secret_with_a_known_lookup_id_revokes_nothing(api_client, user, make_key):
    api_key, _ = make_key(user)
    api_client.post(LEAK, {"api_key": crypto.build_key(api_key.lookup_id, "s" * 32)}, format="json")
    api_key.refresh_from_db()
    assert api_key.is_usable


def test_the_previous_secret_of_a_grace_period_can_be_reported_too(api_client, session, user, make_key):
    api_key, old = make_key(user)
    session.post(f"{KEYS}{api_key.pk}/rotate", {"grace_period_hours": 24}, format="json")
    api_client.post(LEAK, {"api_key": old}, format="json")
    api_key.refresh_from_db()
    assert api_key.state == "reported leaked"


def test_the_leak_report_needs_no_session_and_ignores_a_key_header(api_client, user, make_key):
    _, raw = make_key(user)
    response = api_client.post(LEAK, {"api_key": raw}, format="json", HTTP_X_API_KEY="lfsk_garbage")
    assert response.status_code == 200


@pytest.mark.parametrize("payload", [{}, {"api_key": ""}, {"api_key": None}, {"api_key": ["x"]}, {"api_key": "x" * 201}, []])
def test_the_leak_report_refuses_a_body_without_a_key_string(api_client, payload):
    response = api_client.post(LEAK, payload, format="json")
    assert response.status_code == 422 and "detail" in response.json()


def test_the_leak_report_is_rate_limited_per_address(api_client, settings):
    settings.API_KEY_LEAK_REPORT_RATE = "3/hour"
    for _ in range(3):
        assert api_client.post(LEAK, {"api_key": "lfsk_x"}, format="json").status_code == 200
    response = api_client.post(LEAK, {"api_key": "lfsk_x"}, format="json")
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert "detail" in response.json()
    other_address = api_client.post(LEAK, {"api_key": "lfsk_x"}, format="json", REMOTE_ADDR="10.9.8.7")
    assert other_address.status_code == 200
