"""One validation of a key's access and expiry (apikeys.access.build_terms), called by every entry point:
the key API, the API Keys page, the admin and createapikey say the same words for the same bad input."""

import datetime
import html
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from apikeys import access
from apikeys.access import KeyAccess, build_terms
from apikeys.models import ApiKey
from apikeys.services import create_api_key
from flows.models import Flow

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2026, 6, 15, 12, 0, tzinfo=datetime.UTC)


@pytest.fixture
def flow(user):
    return Flow.objects.create(owner=user, name="Echo")


@pytest.fixture
def theirs(other_user):
    return Flow.objects.create(owner=other_user, name="Theirs")


# --- The function -------------------------------------------------------------------------------

def test_nothing_given_is_full_access_and_no_expiry(user):
    assert build_terms(user) == access.KeyTerms(access=KeyAccess(), expires_at=None)


def test_flow_ids_alone_limit_the_key_and_all_flows_lifts_the_limit(user, flow):
    limited = build_terms(user, flow_ids=[str(flow.pk).upper()]).access
    assert (limited.all_flows, limited.flow_ids) == (False, (str(flow.pk),))
    assert build_terms(user, current=limited, all_flows=True).access == KeyAccess()


def test_what_is_left_out_keeps_the_current_value_even_a_scope_emptied_by_deletions(user):
    emptied = KeyAccess(all_flows=False, flow_ids=(), allowed_ips=("10.0.0.0/8",))
    changed = build_terms(user, current=emptied, permissions="run, read").access
    assert changed == KeyAccess(all_flows=False, flow_ids=(), permissions=("run", "read"),
                                allowed_ips=("10.0.0.0/8",))


def test_every_problem_is_named_at_once_by_field(user, theirs):
    with pytest.raises(ValidationError) as refused:
        build_terms(user, flow_ids=[str(theirs.pk), "nope"], permissions=["run", "admin"],
                    allowed_ips="10.0.0.300 10.0.0.1", expires_at=NOW - datetime.timedelta(seconds=1), now=NOW)
    assert refused.value.message_dict == {
        "flow_ids": ["“nope” is not one of your flows.", f"“{theirs.pk}” is not one of your flows."],
        "permissions": ["“admin” is not a permission: use run, read or write."],
        "allowed_ips": [access.NOT_AN_ADDRESS.format(value="10.0.0.300")],
        "expires_at": ["The expiry must be in the future."],
    }


@pytest.mark.parametrize(("raw", "expected"), [
    ({"expires_at": NOW + datetime.timedelta(days=3650)}, NOW + datetime.timedelta(days=3650)),
    ({"expires_at": None}, None),
    ({"expires_in_days": "30"}, NOW + datetime.timedelta(days=30)),
    ({"expires_in_days": 3650}, NOW + datetime.timedelta(days=3650)),
    ({"expires_in_days": None}, None),
])
def test_an_expiry_in_the_next_ten_years_is_kept(user, raw, expected):
    assert build_terms(user, now=NOW, **raw).expires_at == expected


@pytest.mark.parametrize(("raw", "message"), [
    ({"expires_at": NOW}, access.EXPIRY_PAST),
    ({"expires_at": NOW + datetime.timedelta(days=3650, seconds=1)}, access.EXPIRY_TOO_FAR),
    ({"expires_in_days": "0"}, access.EXPIRY_PAST),
    ({"expires_in_days": -3}, access.EXPIRY_PAST),
    ({"expires_in_days": "3651"}, access.EXPIRY_TOO_FAR),
    ({"expires_in_days": "10**100"}, access.EXPIRY_NOT_DAYS),
])
def test_an_expiry_in_the_past_or_past_ten_years_is_refused(user, raw, message):
    with pytest.raises(ValidationError) as refused:
        build_terms(user, now=NOW, **raw)
    assert refused.value.message_dict == {"expires_at": [message]}


def test_more_than_a_hundred_different_flows_are_refused_before_any_query(user, django_assert_num_queries):
    ids = [f"00000000-0000-4000-8000-{n:012d}" for n in range(101)]
    with django_assert_num_queries(0), pytest.raises(ValidationError, match=r"At most 100 flows \(there are 101\)"):
        build_terms(user, flow_ids=ids)


# --- Every entry point, the same words ----------------------------------------------------------

def through_the_api(user, raw: dict) -> str:
    client = APIClient()
    client.force_login(user)
    response = client.post("/api/v1/api_key/", raw, format="json")
    assert response.status_code == 422
    return str(response.json()["errors"])


def through_the_page(user, raw: dict) -> str:
    from django.test import Client

    client = Client()
    client.force_login(user)
    data = {"scope": "chosen" if "flow_ids" in raw else "all", "flows": raw.get("flow_ids", []),
            "permissions": raw.get("permissions", ["run"]), "allowed_ips": "\n".join(raw.get("allowed_ips", []))}
    response = client.post(reverse("apikeys:create"), data)
    assert response.status_code == 400
    return html.unescape(response.content.decode())


def through_the_admin(user, raw: dict) -> str:
    from django.test import Client

    admin = type(user).objects.filter(username="root").first() or type(user).objects.create_superuser("root",
                                                                                                    password="pw")
    client = Client()
    client.force_login(admin)
    moment = raw.get("expires_at")
    data = {"user": str(user.pk), "name": "", "rate_limit": "",
            "expires_at_0": moment.strftime("%Y-%m-%d") if moment else "",
            "expires_at_1": moment.strftime("%H:%M:%S") if moment else "",
            "access_scope": "chosen" if "flow_ids" in raw else "all", "access_flows": raw.get("flow_ids", []),
            "access_permissions": raw.get("permissions", ["run"]),
            "access_allowed_ips": "\n".join(raw.get("allowed_ips", []))}
    response = client.post(reverse("admin:apikeys_apikey_add"), data)
    assert response.status_code == 200 and "raw_key" not in (response.context or {})
    return html.unescape(response.content.decode())


def through_the_command(user, raw: dict) -> str:
    args = [user.username]
    for flow_id in raw.get("flow_ids", []):
        args += ["--flow", flow_id]
    if "permissions" in raw:
        args += ["--permissions", ",".join(raw["permissions"])]
    for entry in raw.get("allowed_ips", []):
        args += ["--allow-ip", entry]
    if "expires_at" in raw:
        args += ["--expires-in", str((raw["expires_at"] - timezone.now()).days)]
    with pytest.raises(CommandError) as refused:
        call_command("createapikey", *args, stdout=StringIO(), stderr=StringIO())
    return str(refused.value)


ENTRY_POINTS = [through_the_api, through_the_page, through_the_admin, through_the_command]


@pytest.mark.parametrize("entry_point", ENTRY_POINTS, ids=lambda f: f.__name__)
@pytest.mark.parametrize(("raw", "message"), [
    ({"permissions": ["run", "admin"]}, "“admin” is not a permission: use run, read or write."),
    ({"permissions": []}, access.NO_PERMISSION),
    ({"allowed_ips": ["10.0.0.300"]}, access.NOT_AN_ADDRESS.format(value="10.0.0.300")),
    ({"allowed_ips": ["0.0.0.0/1", "128.0.0.0/1"]}, access.WHOLE_FAMILY.format(families="IPv4")),
    ({"flow_ids": ["5d8a0c39-2d53-4a4b-8f35-0a4c8c2f3e70"]}, "“5d8a0c39-2d53-4a4b-8f35-0a4c8c2f3e70” is not one of"),
], ids=["permission", "no-permission", "address", "whole-family", "flow"])
def test_the_same_bad_input_gets_the_same_words_everywhere(user, entry_point, raw, message):
    assert message in entry_point(user, raw)
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize(("entry_point", "whose"), [
    (through_the_api, "your"), (through_the_page, "your"), (through_the_command, "your"),
    (through_the_admin, "the key's user's"),  # the administrator is not the owner
], ids=["api", "page", "command", "admin"])
def test_another_users_flow_reads_like_a_missing_one_everywhere(user, theirs, entry_point, whose):
    missing = "5d8a0c39-2d53-4a4b-8f35-0a4c8c2f3e70"
    for flow_id in (str(theirs.pk), missing):
        assert f"“{flow_id}” is not one of {whose} flows." in entry_point(user, {"flow_ids": [flow_id]})


@pytest.mark.parametrize("entry_point", [through_the_api, through_the_admin, through_the_command],
                         ids=lambda f: f.__name__)
@pytest.mark.parametrize(("delta", "message"), [
    (datetime.timedelta(days=-2), access.EXPIRY_PAST),
    (datetime.timedelta(days=3660), access.EXPIRY_TOO_FAR),
], ids=["past", "too-far"])
def test_expiry_limits_hold_at_every_entry_point(user, entry_point, delta, message):
    assert message in entry_point(user, {"expires_at": timezone.now() + delta})


# --- The admin's expiry on an existing key --------------------------------------------------------

def _change(client, api_key, moment):
    local = timezone.localtime(moment) if moment else None
    return client.post(reverse("admin:apikeys_apikey_change", args=[api_key.pk]), {
        "name": api_key.name, "rate_limit": "", "access_scope": "all", "access_permissions": ["run", "read", "write"],
        "access_allowed_ips": "", "expires_at_0": local.strftime("%Y-%m-%d") if local else "",
        "expires_at_1": local.strftime("%H:%M:%S") if local else "",
    })


def test_the_admin_refuses_to_move_an_expiry_into_the_past_and_keeps_a_valid_change(admin_client, user):
    soon = timezone.now() + datetime.timedelta(days=5)
    api_key, _raw = create_api_key(user=user, expires_at=soon)
    refused = _change(admin_client, api_key, timezone.now() - datetime.timedelta(hours=1))
    assert refused.status_code == 200 and html.escape(access.EXPIRY_PAST) in refused.content.decode()
    assert ApiKey.objects.get(pk=api_key.pk).expires_at == soon
    later = (timezone.now() + datetime.timedelta(days=30)).replace(microsecond=0)
    assert _change(admin_client, api_key, later).status_code == 302
    assert ApiKey.objects.get(pk=api_key.pk).expires_at == later
