"""Operations on API keys: create, revoke, authenticate."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from . import crypto
from .models import ApiKey

# Compared against when the lookup id is unknown, so that path does the same work
# (one query, one HMAC, one constant-time comparison) as a wrong secret.
_UNKNOWN_KEY_DIGEST = "0" * 64


class InvalidApiKey(Exception):
    """The key is malformed, unknown, wrong, revoked, expired, or its owner is inactive.

    One exception for every case: callers must not tell an attacker which one it was.
    """


def current_pepper_version() -> int:
    return max(settings.API_KEY_PEPPERS)


def _pepper(version: int) -> str | None:
    return settings.API_KEY_PEPPERS.get(version)


def create_api_key(*, user, name: str = "", expires_at: datetime.datetime | None = None) -> tuple[ApiKey, str]:
    """Create a key for ``user``; return the record and the raw key, which is never available again."""
    version = current_pepper_version()
    for _ in range(5):  # a lookup-id collision is 1 in 62**12; retry rather than fail
        lookup_id, raw_key = crypto.generate_key()
        if not ApiKey.objects.filter(lookup_id=lookup_id).exists():
            break
    api_key = ApiKey.objects.create(
        user=user,
        name=name,
        lookup_id=lookup_id,
        digest=crypto.digest(raw_key, _pepper(version)),
        pepper_version=version,
        expires_at=expires_at,
    )
    return api_key, raw_key


def revoke_api_key(api_key: ApiKey, *, revoked_by: str = ApiKey.RevokedBy.OWNER) -> bool:
    """Revoke the key at once; return False when it was already revoked.

    The row is kept (revoked) so its history stays visible; the conditional update makes
    concurrent revocations and uses agree on one outcome.
    """
    now = timezone.now()
    with transaction.atomic():
        updated = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
            revoked_at=now, revoked_by=revoked_by
        )
    if updated:
        api_key.revoked_at, api_key.revoked_by = now, revoked_by
    return bool(updated)


def authenticate_api_key(raw_key: str) -> ApiKey:
    """Return the usable key matching ``raw_key`` (its user loaded) and count the use.

    Raises InvalidApiKey otherwise. A malformed key costs no query; every well-formed key,
    known or not, costs one indexed query, one HMAC and one constant-time comparison.
    """
    parsed = crypto.parse_key(raw_key)
    if parsed is None:
        raise InvalidApiKey
    api_key = ApiKey.objects.select_related("user").filter(lookup_id=parsed.lookup_id).first()
    if api_key is not None:
        version, expected = api_key.pepper_version, api_key.digest
    else:
        version, expected = current_pepper_version(), _UNKNOWN_KEY_DIGEST
    pepper = _pepper(version)
    candidate = crypto.digest(parsed.raw, pepper or "")
    matches = crypto.digests_match(expected, candidate)
    if not (api_key is not None and matches and pepper is not None):
        raise InvalidApiKey
    if not api_key.is_usable or not api_key.user.is_active:
        raise InvalidApiKey
    _record_use(api_key, parsed.raw)
    return api_key


def _record_use(api_key: ApiKey, raw_key: str) -> None:
    """Count one use in a single UPDATE.

    ``F() + 1`` runs in the database, so N concurrent requests add exactly N; the row lock
    lasts one statement. The ``revoked_at IS NULL`` condition means a key revoked between
    the read and this write is refused too. A key hashed under an older pepper is
    re-hashed under the current one here, at no extra query.
    """
    now = timezone.now()
    changes = {"total_uses": F("total_uses") + 1, "last_used_at": now}
    version = current_pepper_version()
    if api_key.pepper_version != version:
        changes.update(digest=crypto.digest(raw_key, _pepper(version)), pepper_version=version)
    updated = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(**changes)
    if not updated:
        raise InvalidApiKey
    api_key.last_used_at = now
    api_key.total_uses += 1
