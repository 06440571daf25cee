import datetime

import pytest
from django.utils import timezone

from apikeys import crypto
from apikeys.services import revoke_api_key

pytestmark = pytest.mark.django_db

WHOAMI = "/api/v1/users/whoami"
INVALID = {"detail": "Invalid or missing API key"}
MISSING = {"detail": "An API key must be passed as query or header"}


def test_header_key_authenticates_as_its_owner(api_client, user, make_key):
    _, raw = make_key(user)
    response = api_client.get(WHOAMI, HTTP_X_API_KEY=raw)
    assert response.status_code == 200
    assert response.json() == {"id": str(user.pk), "username": "alice", "is_superuser": False}


def test_query_parameter_key_authenticates(api_client, user, make_key):
    _, raw = make_key(user)
    response = api_client.get(WHOAMI, {"x-api-key": raw})
    assert response.status_code == 200
    assert response.json()["username"] == "alice"


def test_header_wins_over_query_parameter(api_client, user, other_user, make_key):
    _, alice_key = make_key(user)
    _, bob_key = make_key(other_user)
    response = api_client.get(f"{WHOAMI}?x-api-key={bob_key}", HTTP_X_API_KEY=alice_key)
    assert response.json()["username"] == "alice"


def test_header_wins_even_when_invalid(api_client, user, make_key):
    _, raw = make_key(user)
    response = api_client.get(f"{WHOAMI}?x-api-key={raw}", HTTP_X_API_KEY="lfsk_nope")
    assert response.status_code == 403 and response.json() == INVALID


def test_no_key_and_no_session_is_refused_with_langflows_message(api_client):
    response = api_client.get(WHOAMI)
    assert response.status_code == 403
    assert response.json() == MISSING


def test_session_still_authenticates_without_a_key(api_client, user):
    api_client.force_login(user)
    assert api_client.get(WHOAMI).json()["username"] == "alice"


def _mutations(raw: str, lookup_id: str) -> dict[str, str]:
    flipped_index = len("lfsk_") + 13 + 5
    flipped = raw[:flipped_index] + ("a" if raw[flipped_index] != "a" else "b") + raw[flipped_index + 1 :]
    return {
        "empty": "",
        "wrong prefix": "sk-" + raw[len("lfsk_"):],
        "other prefix same length": "lfsx_" + raw[len("lfsk_"):],
        "bad checksum": raw[:-6] + "000000",
        "flipped character": flipped,
        "changed case": raw.swapcase(),
        "surrounding spaces": f" {raw} ",
        "truncated": raw[:-1],
        "extended": raw + "A",
        "valid shape, unknown id": crypto.build_key("Q" * 12, "s" * 32),
        "valid shape, wrong secret": crypto.build_key(lookup_id, "s" * 32),
    }


MUTATION_NAMES = list(_mutations(crypto.generate_key()[1], "x" * 12))


@pytest.mark.parametrize("case", MUTATION_NAMES)
@pytest.mark.parametrize("where", ["header", "query"])
def test_every_bad_key_gets_the_same_refusal(api_client, user, make_key, case, where):
    api_key, raw = make_key(user)
    bad = _mutations(raw, api_key.lookup_id)[case]
    if where == "header":
        response = api_client.get(WHOAMI, HTTP_X_API_KEY=bad)
    else:
        response = api_client.get(WHOAMI, {"x-api-key": bad})
    assert response.status_code == 403
    assert response.json() == INVALID
    api_key.refresh_from_db()
    assert api_key.total_uses == 0


def test_revoked_key_is_refused_on_the_very_next_request(api_client, user, make_key):
    api_key, raw = make_key(user)
    assert api_client.get(WHOAMI, HTTP_X_API_KEY=raw).status_code == 200
    revoke_api_key(api_key)
    response = api_client.get(WHOAMI, HTTP_X_API_KEY=raw)
    assert response.status_code == 403 and response.json() == INVALID


def test_expired_key_is_refused(api_client, user, make_key):
    _, raw = make_key(user, expires_at=timezone.now() - datetime.timedelta(minutes=1))
    assert api_client.get(WHOAMI, HTTP_X_API_KEY=raw).json() == INVALID


def test_key_not_yet_expired_works(api_client, user, make_key):
    _, raw = make_key(user, expires_at=timezone.now() + datetime.timedelta(days=1))
    assert api_client.get(WHOAMI, HTTP_X_API_KEY=raw).status_code == 200


def test_key_of_inactive_owner_is_refused(api_client, user, make_key):
    _, raw = make_key(user)
    user.is_active = False
    user.save()
    assert api_client.get(WHOAMI, HTTP_X_API_KEY=raw).json() == INVALID


def test_a_key_acts_only_as_its_owner(api_client, user, other_user, make_key):
    _, bob_key = make_key(other_user)
    api_client.force_login(user)
    # A key present wins over the session: it is the key's owner who acts.
    assert api_client.get(WHOAMI, HTTP_X_API_KEY=bob_key).json()["username"] == "bob"


def test_refusal_never_echoes_the_key(api_client, user, make_key):
    api_key, raw = make_key(user)
    revoke_api_key(api_key)
    response = api_client.get(WHOAMI, HTTP_X_API_KEY=raw)
    assert raw not in response.content.decode()
    assert api_key.lookup_id not in response.content.decode()


def test_a_refused_key_is_audited_not_logged_again_as_a_server_warning(api_client, user, make_key, caplog):
    import logging

    from apikeys.models import ApiKeyEvent

    _, raw = make_key(user)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = api_client.get(WHOAMI, HTTP_X_API_KEY=raw[:-6] + "000000")
    assert response.status_code == 403
    assert not [r for r in caplog.records if r.name == "django.request"]
    assert ApiKeyEvent.objects.filter(kind="auth_failed").count() == 1
