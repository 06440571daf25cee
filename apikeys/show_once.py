"""Carry a new key from the POST that made it to the one page that shows it, readable by neither side alone.

"Only a digest is stored" must hold for every table, even for the moment between the redirect
and the page, and the session is a database row. So the POST encrypts the key (AES-256-GCM)
under a fresh one-time key and splits the two:

* the session holds the ciphertext, bound (as associated data) to the user, the key's id and
  the page that is to show it;
* the one-time key goes only into a cookie that is HttpOnly, SameSite=Strict, limited to that
  page's path and lives ``COOKIE_SECONDS``, named after the key (so an unseen earlier one, which
  a browser would also send to a page below its path, never stands in for it).

Neither the database nor the browser alone can recover the key. The first request for that very
page takes both halves (the session entry is removed, the cookie deleted), so a reload, Back or
another tab shows nothing, and no other page, another key's included, ever shows it.
"""

from __future__ import annotations

import base64
import binascii
import os
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

from .models import ApiKey

SESSION_KEY = "apikeys:new_key"
COOKIE_PREFIX = "apikeys_new_key_"
COOKIE_SECONDS = 120  # the redirect follows at once; a stray cookie soon expires


def stash(request, response, *, api_key: ApiKey, raw_key: str, page: str) -> None:
    """Keep ``raw_key`` for the next request of ``page``, split between the session and a cookie."""
    one_time_key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(12)
    ciphertext = AESGCM(one_time_key).encrypt(nonce, raw_key.encode(), _bound_to(request, str(api_key.pk), page))
    request.session[SESSION_KEY] = {
        "id": str(api_key.pk),
        "page": page,
        "nonce": _b64(nonce),
        "ciphertext": _b64(ciphertext),
        "until": time.time() + COOKIE_SECONDS,
    }
    response.set_cookie(
        cookie_name(str(api_key.pk)), _b64(one_time_key), max_age=COOKIE_SECONDS, path=page,
        secure=settings.SESSION_COOKIE_SECURE, httponly=True, samesite="Strict",
    )


def cookie_name(api_key_id: str) -> str:
    return COOKIE_PREFIX + api_key_id.replace("-", "")


@dataclass
class Taken:
    """What a page found for itself: ``new_key`` for its template, and the cookie to delete."""

    new_key: dict | None = None
    cookie: tuple[str, str] | None = None  # (name, path)

    def finish(self, response):
        """Delete the used cookie on ``response``; return it."""
        if self.cookie is not None:
            name, path = self.cookie
            response.delete_cookie(name, path=path, samesite="Strict")
        return response


def take(request, page: str) -> Taken:
    """Return the new key stashed for ``page`` (``{"api_key", "raw"}``), at most once; never another page's."""
    stashed = request.session.get(SESSION_KEY)
    if stashed is None:
        return Taken()
    if not isinstance(stashed, dict) or stashed.get("page") != page:
        if not _may_still_open(stashed):
            del request.session[SESSION_KEY]  # malformed, or its cookie has expired: nothing can open it
        return Taken()
    del request.session[SESSION_KEY]
    return Taken(new_key=_open(request, stashed, page), cookie=(cookie_name(str(stashed.get("id"))), page))


def _open(request, stashed: dict, page: str) -> dict | None:
    try:
        raw = AESGCM(_unb64(request.COOKIES[cookie_name(stashed["id"])])).decrypt(
            _unb64(stashed["nonce"]), _unb64(stashed["ciphertext"]), _bound_to(request, stashed["id"], page)
        ).decode()
    except (KeyError, TypeError, AttributeError, ValueError, binascii.Error, InvalidTag):
        return None  # no cookie, or a cookie of another stash, browser or user
    api_key = ApiKey.objects.owned_by(request.user).filter(pk=stashed["id"]).first()
    return None if api_key is None else {"api_key": api_key, "raw": raw}


def _may_still_open(stashed) -> bool:
    until = stashed.get("until") if isinstance(stashed, dict) else None
    return isinstance(until, (int, float)) and until > time.time()


def _bound_to(request, api_key_id: str, page: str) -> bytes:
    return f"{request.user.pk}\n{api_key_id}\n{page}".encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
