import pytest
from django.urls import reverse

from apikeys.models import ApiKey
from apikeys.services import authenticate_api_key

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
