"""The audit log keeps facts, not words: ``ApiKeyEvent.detail`` (at most 200 characters, cut beyond)
becomes ``data`` (JSON, whole; its format is described in apikeys.audit).

Existing rows are read back into facts: every wording the old code wrote is parsed, and a parse
is kept only when writing its facts out in the old words gives the old string exactly. Anything
else (a string cut at 200 characters, a name that made the words ambiguous) is kept as it was,
``{"text": "..."}``, so nothing an old row said is lost. The wording below is a frozen copy of the
old code's, on purpose: this migration must read what was written then, whatever apikeys.audit
says later. Going back writes the words again (cut at 200, as the old column was).
"""

import datetime
import re

from django.db import migrations, models

BATCH = 1000
ALL_PERMISSIONS = ["run", "read", "write"]
# The refusal reasons, as the old code worded them.
REASONS = {
    "malformed key": "malformed_key", "unknown key": "unknown_key", "wrong secret": "wrong_secret",
    "revoked": "revoked", "expired": "expired", "owner inactive": "owner_inactive",
    "address not allowed": "address_not_allowed", "key changed during the request": "key_changed",
}
WORDS_OF_REASON = {code: words for words, code in REASONS.items()}
_UTC = re.compile(r"\A(\d{4}-\d\d-\d\d \d\d:\d\d) UTC\Z")
_CHANGE = re.compile(r"\A(Flows|Permissions|Allowed IPs|Expiry|Rate limit): (.*)\Z", re.S)
_FLOW_DELETED = re.compile(
    r"\AFlows: “(.*)” was deleted and removed from this key \((no flows left|1 flow left|(\d+) flows left)\)\Z", re.S)
_CREATED_LIMITS = re.compile(
    r"\A(?:; flows: (?P<flows>.*?))?(?:; permissions: (?P<permissions>[a-z, ]+?))?"
    r"(?:; allowed IPs: (?P<allowed_ips>[0-9A-Fa-f:./, ]+?))?\Z", re.S)


# --- The old words (frozen) ---------------------------------------------------------------------

def _utc_words(value):
    return f"{datetime.datetime.fromisoformat(value).astimezone(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC"


def _flow_words(flow):
    return f"“{flow.get('name') or flow.get('id')}”"


def _scope_words(scope):
    if scope["all_flows"]:
        return "all flows"
    return ", ".join(_flow_words(flow) for flow in scope["flows"]) or "no flows"


def _list_words(values, empty=""):
    return ", ".join(values) or empty


_CHANGE_WORDS = {
    "flows": ("Flows", _scope_words),
    "permissions": ("Permissions", _list_words),
    "allowed_ips": ("Allowed IPs", lambda value: _list_words(value, "anywhere")),
    "expires_at": ("Expiry", lambda value: _utc_words(value) if value else "never"),
    "rate_limit": ("Rate limit", lambda value: value or "the server's default"),
}


def old_words(kind, data):
    """The detail the old code wrote for these facts."""
    if "text" in data:
        return data["text"]
    if kind == "created":
        parts = [f"expires {_utc_words(data['expires_at'])}" if data["expires_at"] else "never expires"]
        access = data["access"]
        if not access["all_flows"]:
            parts.append(f"flows: {_scope_words(access)}")
        if access["permissions"] != ALL_PERMISSIONS:
            parts.append(f"permissions: {', '.join(access['permissions'])}")
        if access["allowed_ips"]:
            parts.append(f"allowed IPs: {', '.join(access['allowed_ips'])}")
        return "; ".join(parts)
    if kind == "rotated":
        until = data["previous_valid_until"]
        return f"previous secret valid until {_utc_words(until)}" if until else "previous secret stopped at once"
    if kind == "auth_failed":
        return WORDS_OF_REASON[data["reason"]]
    if kind == "access_changed":
        if data.get("cause") == "flow_deleted":
            count = data["flows_left"]
            left = f"{count} flow{'s' if count != 1 else ''} left" if count else "no flows left"
            return f"Flows: {_flow_words(data['flow'])} was deleted and removed from this key ({left})"
        label, words = _CHANGE_WORDS[data["field"]]
        return f"{label}: {words(data['before'])} → {words(data['after'])}"
    return ""


# --- Reading the old words back into facts ------------------------------------------------------

def _moment(text):
    match = _UTC.match(text)
    if not match:
        raise ValueError(text)
    return datetime.datetime.strptime(match[1], "%Y-%m-%d %H:%M").replace(tzinfo=datetime.timezone.utc).isoformat()


def _names(text):
    if not (text.startswith("“") and text.endswith("”")):
        raise ValueError(text)
    return [{"name": name} for name in text[1:-1].split("”, “")]


def _scope(text):
    if text == "all flows":
        return {"all_flows": True, "flows": []}
    if text == "no flows":
        return {"all_flows": False, "flows": []}
    return {"all_flows": False, "flows": _names(text)}


def _list(text, empty=""):
    return [] if text == empty else text.split(", ")


_CHANGE_FACTS = {
    "Flows": ("flows", _scope),
    "Permissions": ("permissions", _list),
    "Allowed IPs": ("allowed_ips", lambda text: _list(text, "anywhere")),
    "Expiry": ("expires_at", lambda text: None if text == "never" else _moment(text)),
    "Rate limit": ("rate_limit", lambda text: "" if text == "the server's default" else text),
}


def _created_facts(detail):
    if detail.startswith("never expires"):
        expires_at, rest = None, detail[len("never expires"):]
    else:
        head, _, rest = detail.partition(" UTC")
        if not head.startswith("expires "):
            raise ValueError(detail)
        expires_at, rest = _moment(head[len("expires "):] + " UTC"), rest
    limits = _CREATED_LIMITS.match(rest)
    if not limits:
        raise ValueError(detail)
    flows = _scope(limits["flows"]) if limits["flows"] is not None else {"all_flows": True, "flows": []}
    return {
        "expires_at": expires_at,
        "rate_limit": "",
        "access": {
            **flows,
            "permissions": _list(limits["permissions"]) if limits["permissions"] is not None else ALL_PERMISSIONS,
            "allowed_ips": _list(limits["allowed_ips"]) if limits["allowed_ips"] is not None else [],
        },
    }


def _change_facts(detail):
    deleted = _FLOW_DELETED.match(detail)
    if deleted:
        left = 0 if deleted[2] == "no flows left" else 1 if deleted[2] == "1 flow left" else int(deleted[3])
        return {"field": "flows", "cause": "flow_deleted", "flow": {"name": deleted[1]}, "flows_left": left}
    change = _CHANGE.match(detail)
    if not change or change[2].count(" → ") != 1:
        raise ValueError(detail)
    field, read = _CHANGE_FACTS[change[1]]
    before, after = change[2].split(" → ")
    return {"field": field, "before": read(before), "after": read(after)}


def _rotated_facts(detail):
    if detail == "previous secret stopped at once":
        return {"previous_valid_until": None}
    prefix = "previous secret valid until "
    if not detail.startswith(prefix):
        raise ValueError(detail)
    return {"previous_valid_until": _moment(detail[len(prefix):])}


_FACTS = {
    "created": _created_facts,
    "rotated": _rotated_facts,
    "auth_failed": lambda detail: {"reason": REASONS[detail]},
    "access_changed": _change_facts,
}


def facts_of(kind, detail):
    """The facts an old row's words say, or ``{"text": detail}`` when they cannot be read back exactly."""
    if not detail:
        return {}
    try:
        data = _FACTS[kind](detail)
        if old_words(kind, data) == detail and len(detail) < 200:
            return data
    except (KeyError, ValueError):
        pass
    return {"text": detail}


# --- The data migration ---------------------------------------------------------------------------

def words_to_facts(apps, schema_editor):
    Event = apps.get_model("apikeys", "ApiKeyEvent")
    events = Event.objects.using(schema_editor.connection.alias)
    # Most rows are refused keys: one UPDATE per reason. The rest (a few per key) one by one.
    for words, code in REASONS.items():
        events.filter(kind="auth_failed", detail=words).update(data={"reason": code})
    pending = events.exclude(detail="").exclude(kind="auth_failed", detail__in=list(REASONS)).only("kind", "detail")
    batch = []
    for event in pending.iterator(chunk_size=BATCH):
        event.data = facts_of(event.kind, event.detail)
        batch.append(event)
        if len(batch) == BATCH:
            Event.objects.using(schema_editor.connection.alias).bulk_update(batch, ["data"])
            batch = []
    if batch:
        Event.objects.using(schema_editor.connection.alias).bulk_update(batch, ["data"])


def facts_to_words(apps, schema_editor):
    Event = apps.get_model("apikeys", "ApiKeyEvent")
    events = Event.objects.using(schema_editor.connection.alias)
    batch = []
    for event in events.only("kind", "data").iterator(chunk_size=BATCH):
        if not event.data:
            continue
        try:
            event.detail = old_words(event.kind, event.data)[:200]
        except (KeyError, TypeError, ValueError):
            event.detail = str(event.data)[:200]
        batch.append(event)
        if len(batch) == BATCH:
            events.bulk_update(batch, ["detail"])
            batch = []
    if batch:
        events.bulk_update(batch, ["detail"])


class Migration(migrations.Migration):

    dependencies = [
        ("apikeys", "0006_event_key_index_covered_by_key_time"),
    ]

    operations = [
        migrations.AddField(
            model_name="apikeyevent",
            name="data",
            field=models.JSONField(blank=True, default=dict,
                                   help_text="The facts of the event (see apikeys.audit), whole."),
        ),
        migrations.RunPython(words_to_facts, facts_to_words),
        migrations.RemoveField(
            model_name="apikeyevent",
            name="detail",
        ),
    ]
