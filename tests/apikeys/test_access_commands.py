"""createapikey --flow, --permissions and --allow-ip: a limited key from the command line."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apikeys.audit import describe
from apikeys.models import ApiKey
from apikeys.services import authenticate_api_key
from flows.models import Flow

pytestmark = pytest.mark.django_db


def run(*args):
    out, err = StringIO(), StringIO()
    call_command("createapikey", *args, stdout=out, stderr=err)
    return out.getvalue().strip()


def test_createapikey_limits_the_key_to_flows_permissions_and_networks(user):
    echo, summary = (Flow.objects.create(owner=user, name=name) for name in ("Echo", "Summary"))
    raw = run("alice", "--flow", str(echo.pk), "--flow", str(summary.pk), "--permissions", "run,read",
              "--allow-ip", "10.1.2.3/8", "--allow-ip", "2001:db8::1")
    api_key = authenticate_api_key(raw, client_ip="10.9.9.9")
    assert (api_key.all_flows, api_key.flow_ids, api_key.permissions, api_key.allowed_ips) == (
        False, [str(echo.pk), str(summary.pk)], ["run", "read"], ["10.0.0.0/8", "2001:db8::1/128"])
    created = api_key.events.get(kind="created")
    assert created.data["access"]["permissions"] == ["run", "read"]
    assert "permissions: run, read" in describe(created)


def test_createapikey_without_options_makes_a_full_access_key(user):
    api_key = authenticate_api_key(run("alice"))
    assert api_key.has_full_access


@pytest.mark.parametrize(("args", "message"), [
    (["--flow", "5d8a0c39-2d53-4a4b-8f35-0a4c8c2f3e70"], "--flow: “5d8a0c39-2d53-4a4b-8f35-0a4c8c2f3e70” is not"),
    (["--flow", "nope"], "--flow: “nope” is not one of your flows"),
    (["--permissions", ""], "--permissions: Choose at least one permission"),
    (["--permissions", "run,admin"], "--permissions: “admin” is not a permission"),
    (["--allow-ip", "10.0.0.300"], "--allow-ip: “10.0.0.300” is not an IPv4"),
    (["--allow-ip", "example.com"], "--allow-ip: “example.com” is not an IPv4"),
])
def test_createapikey_refuses_bad_access_options(user, args, message):
    with pytest.raises(CommandError, match=message):
        run("alice", *args)
    assert not ApiKey.objects.exists()


def test_createapikey_refuses_another_users_flow(user, other_user):
    theirs = Flow.objects.create(owner=other_user, name="Theirs")
    with pytest.raises(CommandError, match="is not one of your flows"):
        run("alice", "--flow", str(theirs.pk))
    assert not ApiKey.objects.exists()
