import pytest
from django.urls import reverse

from apikeys import crypto
from apikeys.models import ApiKey, ApiKeyEvent
from apikeys.services import InvalidApiKey, authenticate_api_key, report_leaked_key, revoke_api_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(client, admin_user):
    client.force_login(admin_user)
    return client


def test_superuser_lists_keys_without_any_secret(admin_client_, user, make_key):
    api_key, raw = make_key(user, name="listed")
    response = admin_client_.get(reverse("admin:apikeys_apikey_changelist"))
    body = response.content.decode()
    assert response.status_code == 200
    assert "listed" in body and api_key.lookup_id in body
    assert raw not in body and api_key.digest not in body


def test_change_page_shows_no_secret_or_digest(admin_client_, user, make_key):
    api_key, raw = make_key(user)
    body = admin_client_.get(reverse("admin:apikeys_apikey_change", args=[api_key.pk])).content.decode()
    assert raw not in body and api_key.digest not in body


def test_superuser_revokes_selected_keys(admin_client_, user, make_key):
    keys = [make_key(user)[0] for _ in range(2)]
    response = admin_client_.post(
        reverse("admin:apikeys_apikey_changelist"),
        {"action": "revoke_selected", "_selected_action": [str(k.pk) for k in keys]},
        follow=True,
    )
    assert response.status_code == 200
    assert ApiKey.objects.filter(revoked_at__isnull=False, revoked_by="admin").count() == 2


def test_creating_a_key_in_the_admin_shows_it_once(admin_client_, user):
    response = admin_client_.post(
        reverse("admin:apikeys_apikey_add"), {"user": str(user.pk), "name": "from admin", "expires_at_0": "", "expires_at_1": ""}
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    raw = response.context["raw_key"]
    assert raw in response.content.decode()
    assert authenticate_api_key(raw).user == user
    api_key = ApiKey.objects.get()
    assert raw not in admin_client_.get(reverse("admin:apikeys_apikey_change", args=[api_key.pk])).content.decode()
    assert raw not in admin_client_.get(reverse("admin:apikeys_apikey_changelist")).content.decode()


def test_admin_add_form_accepts_no_secret_fields(admin_client_):
    body = admin_client_.get(reverse("admin:apikeys_apikey_add")).content.decode()
    assert 'name="digest"' not in body and 'name="lookup_id"' not in body


def test_non_superuser_cannot_enter_the_admin(client, user):
    client.force_login(user)
    response = client.get(reverse("admin:apikeys_apikey_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_superuser_manages_users(admin_client_, user):
    assert admin_client_.get(reverse("admin:users_user_changelist")).status_code == 200


def test_admin_creation_sets_a_rate_limit_and_logs_the_administrator(admin_client_, admin_user, user):
    admin_client_.post(
        reverse("admin:apikeys_apikey_add"),
        {"user": str(user.pk), "name": "limited", "expires_at_0": "", "expires_at_1": "", "rate_limit": "10/s"},
    )
    api_key = ApiKey.objects.get()
    assert api_key.rate_limit == "10/s"
    event = api_key.events.get(kind="created")
    assert (event.actor, event.actor_user) == ("admin", admin_user)


def test_admin_refuses_a_malformed_rate_limit(admin_client_, user):
    response = admin_client_.post(
        reverse("admin:apikeys_apikey_add"),
        {"user": str(user.pk), "name": "x", "expires_at_0": "", "expires_at_1": "", "rate_limit": "fast"},
    )
    assert response.status_code == 200 and ApiKey.objects.count() == 0
    assert "rate like" in response.content.decode()


def test_admin_revocation_is_logged_with_the_administrator(admin_client_, admin_user, user, make_key):
    api_key, _ = make_key(user)
    admin_client_.post(reverse("admin:apikeys_apikey_changelist"),
                       {"action": "revoke_selected", "_selected_action": [str(api_key.pk)]})
    event = api_key.events.get(kind="revoked")
    assert (event.actor, event.actor_user) == ("admin", admin_user)


def test_superuser_rotates_one_key_and_sees_the_new_secret_once(admin_client_, admin_user, user, make_key):
    api_key, old = make_key(user, name="rotate me")
    response = admin_client_.post(reverse("admin:apikeys_apikey_changelist"),
                                  {"action": "rotate_selected", "_selected_action": [str(api_key.pk)]})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    raw = response.context["raw_key"]
    assert "was rotated" in response.content.decode() and raw in response.content.decode()
    assert authenticate_api_key(raw).pk == api_key.pk
    with pytest.raises(InvalidApiKey):
        authenticate_api_key(old)
    assert api_key.events.get(kind="rotated").actor_user == admin_user
    assert raw not in admin_client_.get(reverse("admin:apikeys_apikey_change", args=[api_key.pk])).content.decode()


def test_rotating_needs_exactly_one_active_key(admin_client_, user, make_key):
    keys = [make_key(user)[0] for _ in range(2)]
    response = admin_client_.post(reverse("admin:apikeys_apikey_changelist"),
                                  {"action": "rotate_selected", "_selected_action": [str(k.pk) for k in keys]},
                                  follow=True)
    assert "exactly one" in response.content.decode()
    revoke_api_key(keys[0])
    response = admin_client_.post(reverse("admin:apikeys_apikey_changelist"),
                                  {"action": "rotate_selected", "_selected_action": [str(keys[0].pk)]}, follow=True)
    assert "revoked" in response.content.decode()
    assert not ApiKeyEvent.objects.filter(kind="rotated").exists()


def test_the_key_page_shows_its_audit_log_and_leaked_state(admin_client_, user, make_key, api_client):
    api_key, raw = make_key(user, expires_at=None)
    api_client.get("/api/v1/users/whoami", HTTP_X_API_KEY=crypto.build_key(api_key.lookup_id, "s" * 32))
    report_leaked_key(raw, client_ip="203.0.113.4")
    body = admin_client_.get(reverse("admin:apikeys_apikey_change", args=[api_key.pk])).content.decode()
    assert "reported leaked" in body
    for text in ("Created", "Failed authentication", "wrong secret", "Revoked", "Leak report", "203.0.113.4"):
        assert text in body
    assert raw not in body


def test_superuser_sees_every_event_but_cannot_change_or_delete_them(admin_client_, api_client):
    api_client.get("/api/v1/users/whoami", HTTP_X_API_KEY=crypto.build_key("Q" * 12, "s" * 32))
    event = ApiKeyEvent.objects.get()
    changelist = admin_client_.get(reverse("admin:apikeys_apikeyevent_changelist"))
    assert changelist.status_code == 200 and "Q" * 12 in changelist.content.decode()
    assert admin_client_.get(reverse("admin:apikeys_apikeyevent_add")).status_code == 403
    admin_client_.post(reverse("admin:apikeys_apikeyevent_delete", args=[event.pk]), {"post": "yes"})
    assert ApiKeyEvent.objects.filter(pk=event.pk).exists()


def test_non_superuser_cannot_see_the_audit_log(client, user):
    client.force_login(user)
    response = client.get(reverse("admin:apikeys_apikeyevent_changelist"))
    assert response.status_code == 302
