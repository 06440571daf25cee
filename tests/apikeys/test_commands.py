from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apikeys.models import ApiKey
from apikeys.services import authenticate_api_key

pytestmark = pytest.mark.django_db


def run(*args):
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_createapikey_prints_only_a_working_key(user):
    out, err = run("createapikey", "alice", "--name", "cli", "--expires-in", "30")
    raw = out.strip()
    assert out == raw + "\n"
    assert raw not in err
    api_key = authenticate_api_key(raw)
    assert api_key.user == user and api_key.name == "cli" and api_key.expires_at is not None


def test_createapikey_sets_a_rate_limit_and_logs_the_creation_as_the_administrator(user):
    out, _ = run("createapikey", "alice", "--rate-limit", "100/min")
    api_key = authenticate_api_key(out.strip())
    assert api_key.rate_limit == "100/min"
    event = api_key.events.get(kind="created")
    assert (event.actor, event.actor_user) == ("admin", None)


@pytest.mark.parametrize(
    "args, message",
    [
        (["nobody"], "No user named"),
        (["alice", "--expires-in", "soon"], "whole number"),
        (["alice", "--expires-in", "0"], "--expires-in: The expiry must be in the future."),
        (["alice", "--expires-in", "3651"], "--expires-in: The expiry must be at most ten years"),
        (["alice", "--name", "x" * 101], "at most 100"),
        (["alice", "--rate-limit", "lots"], "rate like"),
        (["alice", "--rate-limit", "0/min"], "rate like"),
    ],
)
def test_createapikey_refuses_bad_arguments(user, args, message):
    with pytest.raises(CommandError, match=message):
        run("createapikey", *args)
    assert ApiKey.objects.count() == 0


def _database_url() -> str:
    """The URL of the test database, so a child process sees the rows this test wrote."""
    from django.db import connection

    conf = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{conf['NAME']}"
    return f"postgres://{conf['USER']}@{conf['HOST']}:{conf['PORT']}/{conf['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_createapikey_from_the_shell_exits_non_zero_on_error_and_prints_only_the_key(user):
    import os
    import subprocess
    import sys

    env = {**os.environ, "DATABASE_URL": _database_url()}
    ok = subprocess.run(
        [sys.executable, "manage.py", "createapikey", "alice"], capture_output=True, text=True, env=env
    )
    assert ok.returncode == 0, ok.stderr
    assert authenticate_api_key(ok.stdout.strip()).user == user
    result = subprocess.run(
        [sys.executable, "manage.py", "createapikey", "no-such-user-anywhere"],
        capture_output=True, text=True, env=env,
    )
    assert result.returncode != 0
    assert "No user named" in result.stderr
    assert result.stdout == ""


def test_revokeapikey_by_id_and_by_lookup_id(user, make_key):
    first, raw_first = make_key(user)
    second, _ = make_key(user)
    out, _ = run("revokeapikey", str(first.pk))
    assert "Revoked" in out and raw_first not in out
    run("revokeapikey", second.lookup_id)
    assert ApiKey.objects.filter(revoked_at__isnull=False).count() == 2


@pytest.mark.parametrize("bad_id", ["not-a-key", "00000000-0000-0000-0000-000000000000"])
def test_revokeapikey_refuses_unknown_ids(bad_id):
    with pytest.raises(CommandError, match="No API key"):
        run("revokeapikey", bad_id)


def test_revokeapikey_refuses_an_already_revoked_key(user, make_key):
    api_key, _ = make_key(user)
    run("revokeapikey", str(api_key.pk))
    with pytest.raises(CommandError, match="already revoked"):
        run("revokeapikey", str(api_key.pk))
