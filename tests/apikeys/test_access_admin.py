"""A key's access in the admin: set at creation, changed (audited as the administrator), validated."""

import pytest
from django.urls import reverse

from apikeys.access import KeyAccess
from apikeys.models import ApiKey, ApiKeyEvent
from apikeys.services import create_api_key, revoke_api_key
from flows.models import Flow

pytestmark = pytest.mark.django_db

NO_EXPIRY = {"expires_at_0": "", "expires_at_1": ""}


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def flow(user):
    return Flow.objects.create(owner=user, name="Echo")


def change(staff, api_key, *, follow=False, **access):
    data = {"name": api_key.name, "rate_limit": "", **NO_EXPIRY, "access_scope": "all",
            "access_permissions": ["run", "read", "write"], "access_allowed_ips": "", **access}
    return staff.post(reverse("admin:apikeys_apikey_change", args=[api_key.pk]), data, follow=follow)


def test_the_admin_creates_a_limited_key(staff, admin_user, user, flow):
    response = staff.post(reverse("admin:apikeys_apikey_add"), {
        "user": str(user.pk), "name": "limited", **NO_EXPIRY, "access_scope": "chosen",
        "access_flows": [str(flow.pk)], "access_permissions": ["run"], "access_allowed_ips": "10.0.0.0/8",
    })
    assert response.status_code == 200 and "raw_key" in response.context
    api_key = ApiKey.objects.get()
    assert (api_key.all_flows, api_key.flow_ids, api_key.permissions, api_key.allowed_ips) == (
        False, [str(flow.pk)], ["run"], ["10.0.0.0/8"])
    event = api_key.events.get(kind=ApiKeyEvent.Kind.CREATED)
    assert (event.actor, event.actor_user) == ("admin", admin_user)


def test_the_admin_cannot_give_a_key_another_users_flow(staff, user, other_user):
    theirs = Flow.objects.create(owner=other_user, name="Theirs")
    response = staff.post(reverse("admin:apikeys_apikey_add"), {
        "user": str(user.pk), **NO_EXPIRY, "access_scope": "chosen", "access_flows": [str(theirs.pk)],
        "access_permissions": ["run"],
    })
    assert response.status_code == 200
    assert f"“{theirs.pk}” is not one of the key&#x27;s user&#x27;s flows." in response.content.decode()
    assert not ApiKey.objects.exists()


def test_the_change_page_offers_only_the_keys_users_flows(staff, user, other_user, flow):
    Flow.objects.create(owner=other_user, name="Bobs flow")
    api_key, _raw = create_api_key(user=user)
    body = staff.get(reverse("admin:apikeys_apikey_change", args=[api_key.pk])).content.decode()
    assert f'value="{flow.pk}"' in body and "Bobs flow" not in body


def test_changing_access_in_the_admin_is_audited_as_the_administrator(staff, admin_user, user, flow):
    api_key, _raw = create_api_key(user=user, name="ci")
    response = change(staff, api_key, access_scope="chosen", access_flows=[str(flow.pk)],
                      access_permissions=["read"], access_allowed_ips="203.0.113.0/24\nnope")
    assert response.status_code == 200 and "“nope” is not an IPv4" in response.content.decode()
    assert ApiKey.objects.get(pk=api_key.pk).has_full_access
    response = change(staff, api_key, access_scope="chosen", access_flows=[str(flow.pk)],
                      access_permissions=["read"], access_allowed_ips="203.0.113.0/24")
    assert response.status_code == 302
    api_key.refresh_from_db()
    assert (api_key.all_flows, api_key.flow_ids, api_key.permissions, api_key.allowed_ips) == (
        False, [str(flow.pk)], ["read"], ["203.0.113.0/24"])
    events = api_key.events.filter(kind=ApiKeyEvent.Kind.ACCESS_CHANGED)
    assert events.count() == 3
    assert {(event.actor, event.actor_user) for event in events} == {("admin", admin_user)}


def test_saving_a_revoked_key_in_the_admin_leaves_its_access_alone(staff, user):
    api_key, _raw = create_api_key(user=user, access=KeyAccess(permissions=("run",)))
    revoke_api_key(api_key)
    response = change(staff, api_key, access_permissions=["run", "read"], follow=True)
    assert "Access unchanged: This key is revoked" in response.content.decode()
    assert ApiKey.objects.get(pk=api_key.pk).permissions == ["run"]


def test_the_key_list_shows_each_keys_access(staff, user, flow):
    create_api_key(user=user, access=KeyAccess(all_flows=False, flow_ids=(str(flow.pk),), permissions=("run",),
                                               allowed_ips=("10.0.0.0/8",)))
    body = staff.get(reverse("admin:apikeys_apikey_changelist")).content.decode()
    assert "1 flow; run; IP-limited" in body
