"""The audit log: the facts each event records, the one function that writes them, and their words.

An event is its ``kind`` (an enum), who did it (``actor``, ``actor_user``), from where
(``client_ip``), to which key (``api_key``, ``lookup_id``) and ``data``: the other facts as JSON,
whole (nothing is ever cut) and never as words. ``data`` by kind:

- ``created``: ``{"expires_at": ISO or null, "rate_limit": "", "access": ACCESS}``
- ``rotated``: ``{"previous_valid_until": ISO or null}`` (null: the previous secret stopped at once)
- ``revoked``, ``expired``: ``{}``
- ``auth_failed``: ``{"reason": ApiKeyEvent.FailureReason}``
- ``access_changed``, one event per aspect: ``{"field": "flows" | "permissions" | "allowed_ips" |
  "expires_at" | "rate_limit", "before": ..., "after": ...}``; flows are ``SCOPE`` values, and a
  deleted flow's removal adds ``{"cause": "flow_deleted", "flow": FLOW, "flows_left": n}``
- rows older than this format (migration 0007) whose words could not be read back as facts:
  ``{"text": "the old words"}``

where ``SCOPE`` is ``{"all_flows": bool, "flows": [FLOW, ...]}``, ``FLOW`` is ``{"id", "name"}``
(the name when the event happened; rows of the old format have names only) and ``ACCESS`` is a
``SCOPE`` with ``"permissions"`` and ``"allowed_ips"`` lists. Times are ISO 8601 in UTC.

``event_row`` builds every event (the ORM saves it in ``record``; a refused key's compiled INSERT
binds the same values, apikeys.queries). ``describe`` alone turns an event into words: the pages
(the ``audit_detail`` filter) and the admin use it.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Iterable

from django.utils import timezone

from .access import KeyAccess
from .models import PERMISSIONS, ApiKey, ApiKeyEvent

Kind = ApiKeyEvent.Kind
FailureReason = ApiKeyEvent.FailureReason


# --- Writing ------------------------------------------------------------------------------------

def event_row(
    kind: str,
    *,
    api_key: ApiKey | None = None,
    api_key_id=None,
    actor: str = "",
    actor_user=None,
    client_ip: str | None = None,
    lookup_id: str = "",
    data: dict | None = None,
    created_at: datetime.datetime | None = None,
) -> dict:
    """The field values (by attname) of one audit event: the one place every event is made.

    Never a secret: at most the key's public lookup id. ``data`` is kept whole.
    """
    return {
        "api_key_id": api_key.pk if api_key is not None else api_key_id,
        "kind": str(kind),
        "actor": str(actor),
        "actor_user_id": actor_user.pk if actor_user is not None else None,
        "lookup_id": lookup_id or (api_key.lookup_id if api_key is not None else ""),
        "client_ip": client_ip,
        "data": data or {},
        "created_at": created_at or timezone.now(),
    }


def record(kind: str, **fields) -> ApiKeyEvent:
    """Append one event to the audit log (``fields`` as for ``event_row``)."""
    return ApiKeyEvent.objects.create(**event_row(kind, **fields))


def _moment(value: datetime.datetime | None) -> str | None:
    return value.astimezone(datetime.UTC).isoformat() if value is not None else None


def flows(flow_ids: Iterable[str], names: dict[str, str]) -> list[dict]:
    """``[{"id", "name"}, ...]``; the name is None for a flow that no longer exists."""
    return [{"id": str(flow_id), "name": names.get(str(flow_id))} for flow_id in flow_ids]


def scope(access: KeyAccess, names: dict[str, str]) -> dict:
    return {"all_flows": access.all_flows, "flows": flows(access.flow_ids, names)}


def created(access: KeyAccess, names: dict[str, str], *, expires_at: datetime.datetime | None,
            rate_limit: str = "") -> dict:
    """A new key's facts: its expiry, its own rate limit and its whole access."""
    return {
        "expires_at": _moment(expires_at),
        "rate_limit": rate_limit,
        "access": {**scope(access, names), "permissions": list(access.permissions),
                   "allowed_ips": list(access.allowed_ips)},
    }


def rotated(previous_valid_until: datetime.datetime | None) -> dict:
    return {"previous_valid_until": _moment(previous_valid_until)}


def failed(reason: str) -> dict:
    return {"reason": str(reason)}


def access_changes(before: KeyAccess, after: KeyAccess, names: dict[str, str]) -> list[dict]:
    """One ``access_changed`` fact per aspect that differs (flows, permissions, allowed IPs)."""
    changes = []
    if (before.all_flows, before.flow_ids) != (after.all_flows, after.flow_ids):
        changes.append({"field": "flows", "before": scope(before, names), "after": scope(after, names)})
    if before.permissions != after.permissions:
        changes.append({"field": "permissions", "before": list(before.permissions),
                        "after": list(after.permissions)})
    if before.allowed_ips != after.allowed_ips:
        changes.append({"field": "allowed_ips", "before": list(before.allowed_ips),
                        "after": list(after.allowed_ips)})
    return changes


def expiry_change(before: datetime.datetime | None, after: datetime.datetime | None) -> dict:
    return {"field": "expires_at", "before": _moment(before), "after": _moment(after)}


def rate_limit_change(before: str, after: str) -> dict:
    return {"field": "rate_limit", "before": before, "after": after}


def flow_deleted(flow, before: KeyAccess, after: KeyAccess, names: dict[str, str]) -> dict:
    """A deleted flow taken out of a key's scope (``names`` includes the deleted flow's)."""
    return {"field": "flows", "cause": "flow_deleted", "flow": {"id": str(flow.pk), "name": flow.name},
            "flows_left": len(after.flow_ids), "before": scope(before, names), "after": scope(after, names)}


# --- Words --------------------------------------------------------------------------------------

def describe(event: ApiKeyEvent) -> str:
    """The event's facts in words, whole: ``Permissions: run, read, write → run``.

    The only place an event becomes words. Never fails on a row it cannot read (a newer or an
    older format): it shows the stored facts as they are.
    """
    data = event.data
    as_stored = json.dumps(data, ensure_ascii=False) if data else ""
    if not isinstance(data, dict):
        return as_stored
    if "text" in data:
        return str(data["text"])
    words = _WORDS.get(event.kind)
    if words is None:
        return as_stored
    try:
        return words(data)
    except (KeyError, TypeError, ValueError, AttributeError):
        return as_stored


def _utc(value: str) -> str:
    moment = datetime.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return f"{moment.astimezone(datetime.UTC):%Y-%m-%d %H:%M} UTC"


def _flow_name(flow: dict) -> str:
    return f"“{flow.get('name') or flow.get('id')}”"


def _scope_words(value: dict) -> str:
    if value["all_flows"]:
        return "all flows"
    return ", ".join(_flow_name(flow) for flow in value["flows"]) or "no flows"


def _created_words(data: dict) -> str:
    parts = [f"expires {_utc(data['expires_at'])}" if data.get("expires_at") else "never expires"]
    access = data.get("access") or {"all_flows": True}
    if not access["all_flows"]:
        parts.append(f"flows: {_scope_words(access)}")
    permissions = access.get("permissions")
    if permissions is not None and list(permissions) != [str(permission) for permission in PERMISSIONS]:
        parts.append(f"permissions: {', '.join(permissions)}")
    if access.get("allowed_ips"):
        parts.append(f"allowed IPs: {', '.join(access['allowed_ips'])}")
    if data.get("rate_limit"):
        parts.append(f"rate limit: {data['rate_limit']}")
    return "; ".join(parts)


def _rotated_words(data: dict) -> str:
    until = data.get("previous_valid_until")
    return f"previous secret valid until {_utc(until)}" if until else "previous secret stopped at once"


def _failed_words(data: dict) -> str:
    reason = data.get("reason", "")
    return str(FailureReason(reason).label) if reason in FailureReason.values else str(reason)


def _expiry_words(value: str | None) -> str:
    return _utc(value) if value else "never"


def _flows_left(count: int) -> str:
    return f"{count} flow{'s' if count != 1 else ''} left" if count else "no flows left"


_CHANGE_WORDS = {
    "flows": ("Flows", _scope_words),
    "permissions": ("Permissions", lambda value: ", ".join(value)),
    "allowed_ips": ("Allowed IPs", lambda value: ", ".join(value) or "anywhere"),
    "expires_at": ("Expiry", _expiry_words),
    "rate_limit": ("Rate limit", lambda value: value or "the server's default"),
}


def _change_words(data: dict) -> str:
    if data.get("cause") == "flow_deleted":
        return (f"Flows: {_flow_name(data['flow'])} was deleted and removed from this key "
                f"({_flows_left(data['flows_left'])})")
    label, words = _CHANGE_WORDS[data["field"]]
    return f"{label}: {words(data['before'])} → {words(data['after'])}"


_WORDS: dict[str, Callable[[dict], str]] = {
    Kind.CREATED: _created_words,
    Kind.ROTATED: _rotated_words,
    Kind.AUTH_FAILED: _failed_words,
    Kind.ACCESS_CHANGED: _change_words,
}
