"""Operations on API keys: create, rotate, revoke, report leaked, change access, authenticate, audit."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from flows.models import Flow

from . import access as key_access
from . import audit, crypto, queries
from .access import KeyAccess
from .models import ApiKey, ApiKeyDailyUsage, ApiKeyEvent, ApiKeyRequest

# Compared against when there is nothing to compare with (unknown lookup id, no previous
# secret), so every well-formed key costs the same: one query, two HMACs, two comparisons.
_UNKNOWN_KEY_DIGEST = "0" * 64
MAX_ROTATION_GRACE = datetime.timedelta(days=7)
USAGE_CHART_DAYS = 30
PRUNE_BATCH = 5000

Actor = ApiKeyEvent.Actor
Reason = ApiKeyEvent.FailureReason


class InvalidApiKey(Exception):
    """The key is malformed, unknown, wrong, revoked, expired, or its owner is inactive.

    One exception for every case: callers must not tell an attacker which one it was. The
    attributes (``reason``: an ApiKeyEvent.FailureReason) are for the audit log only.
    """

    def __init__(self, reason: str = Reason.MALFORMED, *, lookup_id: str = "", api_key: ApiKey | None = None,
                 api_key_id=None):
        super().__init__(reason)
        self.reason, self.lookup_id, self.api_key = reason, lookup_id, api_key
        self.api_key_id = api_key.pk if api_key is not None else api_key_id


class AddressNotAllowed(InvalidApiKey):
    """A right, usable key used from an address outside its allowed IPs.

    Raised only once the secret matched, so only the key's holder learns that the key is
    good but the address is not; the allowed list itself is never told.
    """

    def __init__(self, *, api_key: ApiKey):
        super().__init__(Reason.ADDRESS_NOT_ALLOWED, lookup_id=api_key.lookup_id, api_key=api_key)


class KeyNotActive(Exception):
    """The operation needs a key that is neither revoked nor expired."""


def current_pepper_version() -> int:
    return max(settings.API_KEY_PEPPERS)


def _pepper(version: int) -> str | None:
    return settings.API_KEY_PEPPERS.get(version)


def _current_pepper() -> tuple[int, str]:
    """Return ``(version, pepper)`` of the pepper new digests are made under."""
    version = current_pepper_version()
    return version, settings.API_KEY_PEPPERS[version]


def create_api_key(
    *,
    user,
    name: str = "",
    expires_at: datetime.datetime | None = None,
    rate_limit: str = "",
    access: KeyAccess | None = None,
    actor: str = Actor.OWNER,
    actor_user=None,
    client_ip: str | None = None,
) -> tuple[ApiKey, str]:
    """Create a key for ``user``; return the record and the raw key, which is never available again.

    ``access`` (validated by apikeys.access) limits the key; None is full access.
    """
    access = access or KeyAccess()
    version, pepper = _current_pepper()
    for _ in range(5):  # a lookup-id collision is 1 in 62**12; retry rather than fail
        lookup_id, raw_key = crypto.generate_key()
        if not ApiKey.objects.filter(lookup_id=lookup_id).exists():
            break
    with transaction.atomic():
        api_key = ApiKey.objects.create(
            user=user,
            name=name,
            lookup_id=lookup_id,
            digest=crypto.digest(raw_key, pepper),
            pepper_version=version,
            expires_at=expires_at,
            rate_limit=rate_limit,
            **access.as_fields(),
        )
        facts = audit.created(access, key_access.flow_names(access.flow_ids), expires_at=expires_at,
                              rate_limit=rate_limit)
        audit.record(ApiKeyEvent.Kind.CREATED, api_key=api_key, actor=actor,
                     actor_user=actor_user or _owner_of(actor, user), client_ip=client_ip, data=facts)
    return api_key, raw_key


def _owner_of(actor: str, user):
    return user if actor == Actor.OWNER else None


def revoke_api_key(
    api_key: ApiKey,
    *,
    revoked_by: str = ApiKey.RevokedBy.OWNER,
    actor_user=None,
    client_ip: str | None = None,
) -> bool:
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
            audit.record(ApiKeyEvent.Kind.REVOKED, api_key=api_key, actor=revoked_by,
                         actor_user=actor_user or _owner_of(revoked_by, api_key.user), client_ip=client_ip)
    if updated:
        api_key.revoked_at, api_key.revoked_by = now, revoked_by
    return bool(updated)


def rotate_api_key(
    api_key: ApiKey,
    *,
    grace: datetime.timedelta = datetime.timedelta(0),
    expires_at: Any = key_access.ABSENT,
    actor: str = Actor.OWNER,
    actor_user=None,
    client_ip: str | None = None,
) -> tuple[ApiKey, str]:
    """Give the key a new secret; return the record and the new raw key, shown only this once.

    The old secret stops working at once, or after ``grace`` (at most seven days). Only the
    latest previous secret is kept: rotating again ends the earlier grace period. ``expires_at``
    (validated by the caller; None: never), when given, is the key's new expiry, audited apart.
    """
    if not datetime.timedelta(0) <= grace <= MAX_ROTATION_GRACE:
        raise ValueError("The grace period must be between 0 and 7 days.")
    with transaction.atomic():
        locked = ApiKey.objects.select_for_update().get(pk=api_key.pk)
        if locked.is_revoked:
            raise KeyNotActive("This key is revoked; create a new one instead.")
        if locked.is_expired:
            raise KeyNotActive("This key has expired; create a new one instead.")
        now = timezone.now()
        version, pepper = _current_pepper()
        _, raw_key = crypto.generate_key(locked.lookup_id)
        previous_valid_until = now + grace if grace else None
        changes: dict[str, Any] = {"digest": crypto.digest(raw_key, pepper), "pepper_version": version,
                                   "rotated_at": now, "previous_valid_until": previous_valid_until}
        if grace:
            changes.update(previous_digest=locked.digest, previous_pepper_version=locked.pepper_version)
        else:
            changes.update(previous_digest="", previous_pepper_version=None)
        expiry_changed = expires_at is not key_access.ABSENT and expires_at != locked.expires_at
        if expiry_changed:
            changes["expires_at"] = expires_at
        ApiKey.objects.filter(pk=locked.pk).update(**changes)
        audit.record(ApiKeyEvent.Kind.ROTATED, api_key=locked, actor=actor,
                     actor_user=actor_user or _owner_of(actor, locked.user), client_ip=client_ip,
                     data=audit.rotated(previous_valid_until))
        if expiry_changed:
            audit.record(ApiKeyEvent.Kind.ACCESS_CHANGED, api_key=locked, actor=actor,
                         actor_user=actor_user or _owner_of(actor, locked.user), client_ip=client_ip,
                         data=audit.expiry_change(locked.expires_at, expires_at))
    for field, value in changes.items():
        setattr(api_key, field, value)
    return api_key, raw_key


def change_key_access(
    api_key: ApiKey,
    access: KeyAccess,
    *,
    actor: str = Actor.OWNER,
    actor_user=None,
    client_ip: str | None = None,
) -> list[ApiKeyEvent]:
    """Set the key's flow scope, permissions and allowed IPs; return the audit events of the changes.

    Each changed aspect is one line of the audit log. Only a usable key can change (a revoked
    or expired one raises KeyNotActive, unless nothing would change). Requests already under
    way finish with what they loaded; the next one sees the new limits.
    """
    with transaction.atomic():
        locked = ApiKey.objects.select_for_update().get(pk=api_key.pk)
        before = KeyAccess.of(locked)
        names = key_access.flow_names(set(before.flow_ids) | set(access.flow_ids))
        changes = audit.access_changes(before, access, names)
        if changes and locked.is_revoked:
            raise KeyNotActive("This key is revoked: its access can no longer change.")
        if changes and locked.is_expired:
            raise KeyNotActive("This key has expired: its access can no longer change.")
        if changes:
            ApiKey.objects.filter(pk=locked.pk).update(**access.as_fields())
        events = [
            audit.record(ApiKeyEvent.Kind.ACCESS_CHANGED, api_key=locked, actor=actor,
                         actor_user=actor_user or _owner_of(actor, locked.user), client_ip=client_ip, data=facts)
            for facts in changes
        ]
    for field, value in access.as_fields().items():
        setattr(api_key, field, value)
    return events


_UNSET = object()


def change_key_settings(
    api_key: ApiKey,
    *,
    name=_UNSET,
    expires_at=_UNSET,
    rate_limit=_UNSET,
    actor: str = Actor.ADMIN,
    actor_user=None,
    client_ip: str | None = None,
) -> list[ApiKeyEvent]:
    """Change some of the key's name, expiry and rate limit (left out: unchanged); return the audit events.

    Writes only the columns that change, so a revocation that lands meanwhile (a leak report,
    the owner) is never written back over: nothing here can un-revoke a key. Expiry and rate
    limit are part of what a key may do, so each change is one audit line, and a revoked or
    expired key's stay as they are (KeyNotActive): extending an expired key would revive it.
    """
    with transaction.atomic():
        locked = ApiKey.objects.select_for_update().get(pk=api_key.pk)
        wanted = {field: value for field, value in
                  (("name", name), ("expires_at", expires_at), ("rate_limit", rate_limit))
                  if value is not _UNSET and getattr(locked, field) != value}
        changes = []
        if "expires_at" in wanted:
            changes.append(audit.expiry_change(locked.expires_at, wanted["expires_at"]))
        if "rate_limit" in wanted:
            changes.append(audit.rate_limit_change(locked.rate_limit, wanted["rate_limit"]))
        if changes and locked.is_revoked:
            raise KeyNotActive("This key is revoked: its expiry and rate limit can no longer change.")
        if changes and locked.is_expired:
            raise KeyNotActive("This key has expired: its expiry and rate limit can no longer change.")
        if wanted:
            ApiKey.objects.filter(pk=locked.pk).update(**wanted)
        events = [
            audit.record(ApiKeyEvent.Kind.ACCESS_CHANGED, api_key=locked, actor=actor,
                         actor_user=actor_user or _owner_of(actor, locked.user), client_ip=client_ip, data=facts)
            for facts in changes
        ]
    for field, value in wanted.items():
        setattr(api_key, field, value)
    return events


def remove_flow_from_key_scopes(flow) -> int:
    """Take ``flow`` (being deleted) out of every key limited to it; return how many keys changed.

    A key left with no flows reaches none (it does not fall back to all flows). One query to
    find the keys and one for the names of their flows (for the audit log), then one UPDATE and
    one audit line per key that had the flow. Call it in the deleting transaction.
    """
    flow_id = str(flow.pk)
    # The JSON text holds the id's 36 characters; the exact check below ignores any other match.
    keys = [api_key for api_key in
            ApiKey.objects.select_for_update().filter(all_flows=False, flow_ids__icontains=flow_id)
            if flow_id in api_key.flow_ids]
    names = key_access.flow_names({other for api_key in keys for other in api_key.flow_ids} - {flow_id})
    names[flow_id] = flow.name
    for api_key in keys:
        before = KeyAccess.of(api_key)
        after = dataclasses.replace(before, flow_ids=tuple(other for other in before.flow_ids if other != flow_id))
        ApiKey.objects.filter(pk=api_key.pk).update(flow_ids=list(after.flow_ids))
        audit.record(ApiKeyEvent.Kind.ACCESS_CHANGED, api_key=api_key, actor=Actor.SYSTEM,
                     data=audit.flow_deleted(flow, before, after, names))
    return len(keys)


def keys_reaching_only(flow) -> list[ApiKey]:
    """The usable keys of ``flow``'s owner that deleting ``flow`` would leave reaching no flow.

    Limited to chosen flows, this one among them, and none of the others still there.
    """
    flow_id = str(flow.pk)
    # The JSON text holds the id's 36 characters; the exact check below ignores any other match.
    limited = ApiKey.objects.filter(user_id=flow.owner_id, all_flows=False, revoked_at__isnull=True,
                                    flow_ids__icontains=flow_id)
    candidates = [api_key for api_key in limited if flow_id in api_key.flow_ids and not api_key.is_expired]
    others = {other for api_key in candidates for other in api_key.flow_ids} - {flow_id}
    existing = {str(pk) for pk in
                Flow.objects.filter(owner_id=flow.owner_id, pk__in=others).values_list("pk", flat=True)} if others else set()
    return [api_key for api_key in candidates if not set(api_key.flow_ids) & existing]


def revoke_api_keys(user, ids, *, client_ip: str | None = None) -> list[ApiKey]:
    """Revoke those of ``user``'s keys among ``ids`` that are not revoked yet; return them.

    Each is revoked (and audited) as ``revoke_api_key`` does; another user's ids are ignored.
    """
    keys = list(ApiKey.objects.owned_by(user).filter(pk__in=list(ids), revoked_at__isnull=True).select_related("user"))
    return [api_key for api_key in keys
            if revoke_api_key(api_key, revoked_by=ApiKey.RevokedBy.OWNER, actor_user=user, client_ip=client_ip)]


def acknowledge_leak_notice(api_key: ApiKey) -> bool:
    """Dismiss the notice of the key's leak report (it stays revoked and marked); return whether it was shown."""
    now = timezone.now()
    updated = ApiKey.objects.filter(pk=api_key.pk, revoked_by=ApiKey.RevokedBy.LEAK_REPORT,
                                    leak_acknowledged_at__isnull=True).update(leak_acknowledged_at=now)
    if updated:
        api_key.leak_acknowledged_at = now
    return bool(updated)


def _find_and_verify(parsed: crypto.ParsedKey) -> tuple[Any, tuple[ApiKey, str] | None]:
    """Return ``(key id, (key, which secret matched))`` for the lookup id: ``(None, None)``
    when unknown, ``(id, None)`` when no secret matched.

    Always the same work, whether the key exists or not: one query that reads a key row and its
    owner's (another key's when the lookup id is unknown), the same columns read from it, two HMACs and
    two constant-time comparisons (current secret, then the previous one of a rotation grace
    period). The key and its owner are built as objects only once a secret matched, so a
    wrong secret costs less than a right one.
    """
    row, known = queries.find_key_or_decoy(parsed.lookup_id)
    if row is not None:
        value = row.value
        key_id = value("id")
        previous_digest = value("previous_digest")
        has_previous = bool(previous_digest) and ApiKey.grace_period_running(
            previous_digest, value("previous_valid_until"))
        version = value("pepper_version")
        current_digest = value("digest")
        previous_version = value("previous_pepper_version") or version
    else:  # no key at all (or the decoy just went): nothing to read, nothing to tell apart
        key_id, previous_digest, has_previous, current_digest = None, "", False, ""
        version = previous_version = current_pepper_version()
    if not known:
        current_digest = _UNKNOWN_KEY_DIGEST
    candidates = [
        ("current", version, current_digest),
        ("previous", previous_version, previous_digest if known and has_previous else _UNKNOWN_KEY_DIGEST),
    ]
    matched = None
    for name, version, expected in candidates:
        pepper = _pepper(version)
        equal = crypto.digests_match(expected, crypto.digest(parsed.raw, pepper or ""))
        if equal and pepper is not None and known and matched is None:
            matched = name
    if row is None or not known:  # a known lookup id always came with its row
        return None, None
    return key_id, ((queries.key_with_owner(row), matched) if matched is not None else None)


def authenticate_api_key(raw_key: str, *, client_ip: str | None = None) -> ApiKey:
    """Return the usable key matching ``raw_key`` (its user loaded) and count the use.

    Raises InvalidApiKey otherwise, and AddressNotAllowed when the key is right but limited to
    addresses that ``client_ip`` (None: unknown) is not among; that request is not counted as
    a use. A malformed key costs no query; every well-formed key, known or not, costs one
    indexed query and the same hashing; a good one one UPDATE more.
    """
    parsed = crypto.parse_key(raw_key)
    if parsed is None:
        raise InvalidApiKey(Reason.MALFORMED)
    for _ in range(2):  # a second pass only when a rotation raced this request
        key_id, verified = _find_and_verify(parsed)
        if verified is None:
            reason = Reason.UNKNOWN if key_id is None else Reason.WRONG_SECRET
            raise InvalidApiKey(reason, lookup_id=parsed.lookup_id, api_key_id=key_id)
        api_key, matched = verified
        refusal = _refusal(api_key)
        if refusal:
            raise InvalidApiKey(refusal, lookup_id=parsed.lookup_id, api_key=api_key)
        if not api_key.allows_address(client_ip):
            raise AddressNotAllowed(api_key=api_key)
        if _record_use(api_key, parsed.raw, matched):
            return api_key
    raise InvalidApiKey(Reason.KEY_CHANGED, lookup_id=parsed.lookup_id, api_key=api_key)


def _refusal(api_key: ApiKey) -> str:
    if api_key.is_revoked:
        return Reason.REVOKED
    if api_key.is_expired:
        return Reason.EXPIRED
    if not api_key.user.is_active:
        return Reason.OWNER_INACTIVE
    return ""


def _record_use(api_key: ApiKey, raw_key: str, matched: str) -> bool:
    """Count one use in a single UPDATE; return False when the key changed since it was read.

    ``total_uses + 1`` runs in the database, so N concurrent requests add exactly N; the row lock
    lasts one statement, and a database trigger adds the use to today's usage row inside it.
    The conditions refuse a key revoked, or rotated, between the read and this write: a
    revoked key fails on the very next request in every worker. A key hashed under an older
    pepper is re-hashed under the current one here, at no extra query (never from a
    previous secret, which is not the key's current one).
    """
    now = timezone.now()
    version, pepper = _current_pepper()
    rehash = None
    if matched == "current" and api_key.pepper_version != version:
        rehash = (crypto.digest(raw_key, pepper), version)
    if not queries.count_use(api_key, now=now, rehash=rehash, previous_secret=matched == "previous"):
        return False
    if rehash is not None:
        api_key.digest, api_key.pepper_version = rehash
    api_key.last_used_at = now
    api_key.total_uses += 1
    return True


def record_failed_authentication(error: InvalidApiKey, *, client_ip: str | None) -> None:
    """Log a refused key: lookup id (only when the key parsed), client IP and reason, never the key.

    The event is made by apikeys.audit like every other, and written by a compiled INSERT:
    refusals must not cost more than a valid key.
    """
    queries.insert_event(audit.event_row(ApiKeyEvent.Kind.AUTH_FAILED, api_key_id=error.api_key_id,
                                         lookup_id=error.lookup_id, client_ip=client_ip,
                                         data=audit.failed(error.reason)))
    if error.reason == Reason.EXPIRED and error.api_key is not None:  # an expired key is always attached
        record_expiry(error.api_key)


def record_expiry(api_key: ApiKey) -> None:
    """Log, once, that the key expired (dated at its expiry), unless it was revoked before."""
    expires_at = api_key.expires_at
    if expires_at is None or not api_key.is_expired:
        return
    if api_key.revoked_at is not None and api_key.revoked_at <= expires_at:
        return
    event = ApiKeyEvent(**audit.event_row(ApiKeyEvent.Kind.EXPIRED, api_key=api_key, actor=Actor.SYSTEM,
                                          created_at=expires_at))
    # A partial unique index keeps one expiry event per key, whoever notices first.
    ApiKeyEvent.objects.bulk_create([event], ignore_conflicts=True)


def report_leaked_key(raw_key: str, *, client_ip: str | None = None) -> bool:
    """Revoke the key at once and mark it reported leaked; return whether a key was revoked.

    Either of its secrets (current, or previous in a grace period) counts. The caller must
    answer the same either way.
    """
    parsed = crypto.parse_key(raw_key)
    if parsed is None:
        return False
    _, verified = _find_and_verify(parsed)
    if verified is None:
        return False
    api_key, _ = verified
    if api_key.is_revoked:
        return False
    return revoke_api_key(api_key, revoked_by=ApiKey.RevokedBy.LEAK_REPORT, client_ip=client_ip)


def audit_log(api_key: ApiKey, *, limit: int = 100) -> list[ApiKeyEvent]:
    """Return the key's latest events, newest first, after noting an expiry nobody saw yet."""
    return list(audit_events(api_key)[:limit])


def audit_events(api_key: ApiKey):
    """Every event of the key, newest first (a queryset to page), after noting an expiry nobody saw yet."""
    record_expiry(api_key)
    return api_key.events.select_related("actor_user")


def request_log(api_key: ApiKey):
    """The key's logged requests, newest first (a queryset to page), after writing this process's batch."""
    from . import request_log as log  # the log's middleware imports core.middleware: keep it out of imports

    log.flush()
    return api_key.requests.all()


def prune_request_log(*, days: int | None = None, now: datetime.datetime | None = None,
                      batch: int = PRUNE_BATCH) -> int:
    """Delete request log rows older than ``days`` (REQUEST_LOG_RETENTION_DAYS); return how many."""
    days = settings.REQUEST_LOG_RETENTION_DAYS if days is None else days
    if days < 1:
        raise ValueError("Keep at least one day of the request log.")
    cutoff = (now or timezone.now()) - datetime.timedelta(days=days)
    return _delete_in_batches(ApiKeyRequest.objects.filter(created_at__lt=cutoff), batch)



def prune_audit_log(*, days: int | None = None, now: datetime.datetime | None = None,
                    batch: int = PRUNE_BATCH) -> tuple[int, int]:
    """Delete audit events and daily-usage rows older than ``days`` (AUDIT_RETENTION_DAYS); return the counts.

    Deleted ``batch`` rows per transaction, so that a first run over years of refused keys
    never holds the database's write lock for long. An expired key's "expired" event may come
    back later, dated at its expiry (apikeys.services.record_expiry), and go with the next run.
    """
    days = settings.AUDIT_RETENTION_DAYS if days is None else days
    if days < 1:
        raise ValueError("Keep at least one day of the audit log.")
    cutoff = (now or timezone.now()) - datetime.timedelta(days=days)
    events = _delete_in_batches(ApiKeyEvent.objects.filter(created_at__lt=cutoff), batch)
    usage = _delete_in_batches(
        ApiKeyDailyUsage.objects.filter(day__lt=cutoff.astimezone(datetime.UTC).date()), batch)
    return events, usage


def _delete_in_batches(queryset, batch: int) -> int:
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(queryset.order_by().values_list("pk", flat=True)[:batch])
            if not ids:
                return deleted
            deleted += queryset.model.objects.filter(pk__in=ids).delete()[0]


def daily_usage(api_key: ApiKey, *, days: int = USAGE_CHART_DAYS, today: datetime.date | None = None):
    """Return ``[(day, uses), ...]`` for the last ``days`` UTC days, oldest first, zeros included."""
    today = today or timezone.now().astimezone(datetime.UTC).date()
    first = today - datetime.timedelta(days=days - 1)
    counts = dict(
        ApiKeyDailyUsage.objects.filter(api_key=api_key, day__gte=first, day__lte=today).values_list("day", "uses")
    )
    return [(day, counts.get(day, 0)) for day in (first + datetime.timedelta(days=n) for n in range(days))]
