"""A new key crosses the redirect split in two: ciphertext in the session, its one-time key in a cookie.

Neither the database (the session row, every other table) nor the cookie alone holds or recovers it;
it is shown on the page it was made for, once, and never on another key's page.
"""

import base64
import re

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.contrib.sessions.models import Session
from django.db import connection
from django.urls import reverse

from apikeys import show_once
from apikeys.models import ApiKey

pytestmark = pytest.mark.django_db

LIST = reverse("apikeys:list")
SHOWN = re.compile(r'id="new-key-value"[^>]*value="(lfsk_[^"]+)"')


def _detail(api_key):
    return reverse("apikeys:detail", args=[api_key.pk])


def _create(client, name="ci"):
    response = client.post(reverse("apikeys:create"), {"name": name})
    assert response.status_code == 302
    return response, ApiKey.objects.get(name=name)


def _rotate(client, api_key):
    response = client.post(reverse("apikeys:rotate", args=[api_key.pk]), {"grace_period_hours": 0, "confirmed": "on"})
    assert response.status_code == 302
    return response


def _shown(response) -> str | None:
    match = SHOWN.search(response.content.decode())
    return match.group(1) if match else None


def _cookie(api_key):
    return show_once.cookie_name(str(api_key.pk))


def _unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _every_table_as_text() -> str:
    rows = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            rows.append(repr(cursor.fetchall()))
    return "\n".join(rows)


def test_between_the_redirect_and_the_page_no_table_holds_the_key(signed_in):
    response, api_key = _create(signed_in)
    session_row = Session.objects.get(session_key=signed_in.session.session_key)
    cookie = response.cookies[_cookie(api_key)].value
    raw = _shown(signed_in.get(LIST))
    secret = raw.removeprefix(f"lfsk_{api_key.lookup_id}_")
    assert secret not in session_row.session_data and secret not in repr(session_row.get_decoded())
    assert secret not in cookie and raw not in cookie
    # The whole database at that moment (sessions, keys, audit log, the cache table): no secret.
    signed_in.post(reverse("apikeys:create"), {"name": "second"})
    second = ApiKey.objects.get(name="second")
    stashed = Session.objects.get(session_key=signed_in.session.session_key).get_decoded()[show_once.SESSION_KEY]
    assert stashed["id"] == str(second.pk) and set(stashed) == {"id", "page", "nonce", "ciphertext", "until"}
    dump = _every_table_as_text()
    assert secret not in dump


def test_neither_the_session_nor_the_cookie_alone_recovers_the_key(signed_in, user):
    response, api_key = _create(signed_in)
    stashed = signed_in.session[show_once.SESSION_KEY]
    one_time_key = _unb64(response.cookies[_cookie(api_key)].value)
    nonce, ciphertext = _unb64(stashed["nonce"]), _unb64(stashed["ciphertext"])
    bound = f"{user.pk}\n{api_key.pk}\n{LIST}".encode()
    with pytest.raises(InvalidTag):  # the database's half, with any key but the cookie's
        AESGCM(AESGCM.generate_key(bit_length=256)).decrypt(nonce, ciphertext, bound)
    assert len(one_time_key) == 32 and len(ciphertext) > 32  # the cookie is only a random key, no message
    raw = AESGCM(one_time_key).decrypt(nonce, ciphertext, bound).decode()  # both halves together
    assert raw == _shown(signed_in.get(LIST))


def test_without_its_cookie_the_session_shows_nothing_and_forgets_the_stash(signed_in):
    _response, api_key = _create(signed_in)
    del signed_in.cookies[_cookie(api_key)]
    assert _shown(signed_in.get(LIST)) is None
    assert show_once.SESSION_KEY not in signed_in.session


def test_a_cookie_without_its_session_shows_nothing(client, user):
    client.force_login(user)
    _response, api_key = _create(client)
    cookie = client.cookies[_cookie(api_key)].value
    client.logout()
    client.force_login(user)  # a new session: the cookie alone
    client.cookies[_cookie(api_key)] = cookie
    assert _shown(client.get(LIST)) is None


def test_the_cookie_is_short_lived_httponly_strict_and_limited_to_the_page(signed_in, user, make_key):
    response, api_key = _create(signed_in)
    cookie = response.cookies[_cookie(api_key)]
    assert cookie["httponly"] is True and cookie["samesite"] == "Strict"
    assert cookie["path"] == LIST and int(cookie["max-age"]) == show_once.COOKIE_SECONDS <= 300
    signed_in.get(LIST)
    rotated, _ = make_key(user, name="rotate me")
    cookie = _rotate(signed_in, rotated).cookies[_cookie(rotated)]
    assert cookie["path"] == _detail(rotated)


def test_the_page_that_shows_it_deletes_the_cookie_and_a_reload_shows_nothing(signed_in):
    _response, api_key = _create(signed_in)
    shown = signed_in.get(LIST)
    assert _shown(shown) is not None
    deleted = shown.cookies[_cookie(api_key)]
    assert deleted.value == "" and deleted["path"] == LIST and deleted["expires"].startswith("Thu, 01 Jan 1970")
    assert _shown(signed_in.get(LIST)) is None


def test_a_new_key_is_never_shown_on_another_keys_page(signed_in, user, make_key):
    other, _ = make_key(user, name="other")
    _create(signed_in)
    assert _shown(signed_in.get(_detail(other))) is None
    assert _shown(signed_in.get(LIST)) is not None  # still there for its own page


def test_a_rotated_secret_shows_only_on_that_keys_page_once(signed_in, user, make_key):
    rotated, _ = make_key(user, name="rotated")
    other, _ = make_key(user, name="other")
    _rotate(signed_in, rotated)
    assert _shown(signed_in.get(_detail(other))) is None
    assert _shown(signed_in.get(LIST)) is None
    raw = _shown(signed_in.get(_detail(rotated)))
    assert raw is not None and raw.startswith(f"lfsk_{rotated.lookup_id}_")
    assert _shown(signed_in.get(_detail(rotated))) is None


def test_a_later_key_replaces_an_unseen_one_whose_cookie_cannot_stand_in(signed_in, user, make_key):
    _response, first = _create(signed_in, "first")  # its page never asked: its cookie stays in the browser
    rotated, _ = make_key(user, name="rotated")
    _rotate(signed_in, rotated)
    # A browser sends the list's cookie to the key's page too (that path is below the list's),
    # after the page's own: each cookie has a name of its own, so neither hides the other.
    jar = signed_in.cookies
    header = "; ".join(f"{name}={jar[name].value}" for name in
                       ("sessionid", "csrftoken", _cookie(rotated), _cookie(first)) if name in jar)
    assert _shown(signed_in.get(_detail(rotated), HTTP_COOKIE=header)) is not None
    assert _shown(signed_in.get(LIST)) is None  # replaced: one new key waits at a time


@pytest.mark.parametrize("stashed", [
    {"id": "x", "raw": "lfsk_old_format"}, "garbage", {"page": LIST, "id": 1, "nonce": 5, "ciphertext": None},
])
def test_a_malformed_stash_is_dropped_without_an_error(signed_in, stashed):
    session = signed_in.session
    session[show_once.SESSION_KEY] = stashed
    session.save()
    response = signed_in.get(LIST)
    assert response.status_code == 200 and _shown(response) is None
    assert show_once.SESSION_KEY not in signed_in.session
