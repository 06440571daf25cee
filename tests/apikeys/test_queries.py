"""The hand-compiled hot-path statements must behave exactly like the ORM queries they replace."""

import datetime

import pytest
from django.utils import timezone

from apikeys import queries
from apikeys.models import ApiKey
from apikeys.services import authenticate_api_key, rotate_api_key

pytestmark = pytest.mark.django_db


def _load(lookup_id):
    """The compiled path as authentication uses it: the row, then the objects."""
    row, known = queries.find_key_or_decoy(lookup_id)
    return queries.key_with_owner(row) if known else None


def _orm_load(lookup_id):
    return ApiKey.objects.select_related("user").filter(lookup_id=lookup_id).first()


def _field_values(instance):
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}


def _assert_same(fast, slow):
    assert type(fast) is type(slow)
    assert _field_values(fast) == _field_values(slow)
    assert _field_values(fast.user) == _field_values(slow.user)
    assert fast._state.adding is False and fast._state.db == slow._state.db


def test_loaded_key_equals_the_orm_one_for_a_fresh_key(user, make_key):
    api_key, _ = make_key(user, name="fresh")
    _assert_same(_load(api_key.lookup_id), _orm_load(api_key.lookup_id))


def test_loaded_key_equals_the_orm_one_with_every_field_set(user, make_key):
    api_key, raw = make_key(user, name="busy", expires_at=timezone.now() + datetime.timedelta(days=3))
    authenticate_api_key(raw)
    rotate_api_key(api_key, grace=datetime.timedelta(hours=2))
    ApiKey.objects.filter(pk=api_key.pk).update(
        all_flows=False, flow_ids=["7d1c2f0e-8a55-4c2b-9d59-5d0f3f3b0a11"], permissions=["run"],
        allowed_ips=["10.0.0.0/8", "2001:db8::/32"], rate_limit="10/min",
    )
    fast, slow = _load(api_key.lookup_id), _orm_load(api_key.lookup_id)
    _assert_same(fast, slow)
    assert fast.flow_ids == ["7d1c2f0e-8a55-4c2b-9d59-5d0f3f3b0a11"] and fast.permissions == ["run"]
    assert timezone.is_aware(fast.expires_at) and timezone.is_aware(fast.previous_valid_until)
    assert fast.user.pk == user.pk and fast.user.username == "alice"


def test_unknown_lookup_id_loads_nothing(user, make_key):
    make_key(user)
    assert _load("NoSuchKey123") is None


def test_load_is_one_query(user, make_key, django_assert_num_queries):
    api_key, _ = make_key(user)
    with django_assert_num_queries(1):
        loaded = _load(api_key.lookup_id)
        assert loaded.user.username == "alice"  # the owner came with it


def test_count_use_refuses_a_key_rotated_since_it_was_read(user, make_key):
    api_key, _ = make_key(user)
    stale = _load(api_key.lookup_id)
    rotate_api_key(api_key)
    assert queries.count_use(stale, now=timezone.now()) is False
    fresh = _load(api_key.lookup_id)
    assert queries.count_use(fresh, now=timezone.now()) is True
    assert ApiKey.objects.get(pk=api_key.pk).total_uses == 1


def test_count_use_with_a_previous_secret_needs_the_grace_period_running(user, make_key):
    api_key, _ = make_key(user)
    rotate_api_key(api_key, grace=datetime.timedelta(hours=1))
    loaded = _load(api_key.lookup_id)
    assert queries.count_use(loaded, now=timezone.now(), previous_secret=True) is True
    later = timezone.now() + datetime.timedelta(hours=2)
    assert queries.count_use(loaded, now=later, previous_secret=True) is False
    assert ApiKey.objects.get(pk=api_key.pk).total_uses == 1


class _RecordingRouter:
    calls: list = []

    def db_for_read(self, model, **hints):
        self.calls.append(("read", model.__name__))
        return "default"

    def db_for_write(self, model, **hints):
        self.calls.append(("write", model.__name__))
        return "default"


def test_compiled_statements_follow_the_database_routers(user, make_key, monkeypatch):
    from django.db import router

    api_key, _ = make_key(user)
    monkeypatch.setattr(router, "_routers", [_RecordingRouter()])
    router.__dict__.pop("routers", None)  # ConnectionRouter caches the routers it built
    _RecordingRouter.calls.clear()
    try:
        loaded = _load(api_key.lookup_id)
        queries.count_use(loaded, now=timezone.now())
    finally:
        router.__dict__.pop("routers", None)
    assert ("read", "ApiKey") in _RecordingRouter.calls and ("write", "ApiKey") in _RecordingRouter.calls


@pytest.mark.parametrize("client_ip", ["203.0.113.9", "2001:db8::7", None])
def test_the_compiled_event_insert_writes_exactly_what_the_orm_writes_for_the_same_row(user, make_key, client_ip):
    from apikeys import audit
    from apikeys.models import ApiKeyEvent

    api_key, _ = make_key(user)
    now = timezone.now()
    rows = [
        audit.event_row("auth_failed", api_key_id=api_key.pk, lookup_id=api_key.lookup_id, client_ip=client_ip,
                        data={"reason": "wrong_secret", "long": "x" * 5000}, created_at=now),
        audit.event_row("auth_failed", client_ip=client_ip, data=audit.failed("malformed_key"), created_at=now),
    ]
    for row in rows:
        queries.insert_event(row)
        ApiKeyEvent.objects.create(**row)
    columns = ["api_key", "kind", "actor", "actor_user", "lookup_id", "client_ip", "data", "created_at"]
    compiled_known, orm_known, compiled_malformed, orm_malformed = (
        ApiKeyEvent.objects.filter(kind="auth_failed").order_by("id").values(*columns))
    assert compiled_known == orm_known and compiled_malformed == orm_malformed
    assert (compiled_known["api_key"], compiled_known["lookup_id"], compiled_known["client_ip"],
            compiled_known["created_at"]) == (api_key.pk, api_key.lookup_id, client_ip, now)
    assert compiled_known["data"] == {"reason": "wrong_secret", "long": "x" * 5000}  # whole, never cut
    assert compiled_malformed["api_key"] is None and compiled_malformed["data"] == {"reason": "malformed_key"}


def test_the_compiled_request_log_insert_writes_what_the_orm_writes_for_the_same_rows(user, make_key):
    from apikeys.models import ApiKeyRequest

    api_key, _ = make_key(user)
    now = timezone.now()
    rows = [
        {"api_key_id": api_key.pk, "created_at": now, "method": "POST", "path": "/api/v1/run/échange",
         "flow_ref": "échange", "status": 200, "client_ip": "2001:db8::7"},
        {"api_key_id": api_key.pk, "created_at": now, "method": "GET", "path": "/api/v1/flows/",
         "flow_ref": "", "status": 403, "client_ip": None},
    ]
    queries.insert_requests(rows)
    ApiKeyRequest.objects.bulk_create([ApiKeyRequest(**row) for row in rows])
    columns = ["api_key", "created_at", "method", "path", "flow_ref", "status", "client_ip"]
    written = list(ApiKeyRequest.objects.order_by("id").values(*columns))
    assert written[:2] == written[2:]
    assert written[0] == {"api_key": api_key.pk, "created_at": now, "method": "POST", "path": "/api/v1/run/échange",
                          "flow_ref": "échange", "status": 200, "client_ip": "2001:db8::7"}
    queries.insert_requests([])  # nothing to write: no statement, no error
    assert ApiKeyRequest.objects.count() == 4


def test_each_compiled_statement_is_compiled_once_per_connection_and_variant(monkeypatch):
    from django.db import connections

    from apikeys import queries

    statements = queries._count_use._compiled
    built = []
    real = statements._compile
    monkeypatch.setattr(statements, "_compile", lambda conn, **variant: built.append(variant) or real(conn, **variant))
    connection = connections["default"]
    statements._by_connection.pop(connection, None)
    plain, rehashed = ({"rehash": False, "rotated": False, "previous": False},
                       {"rehash": True, "rotated": False, "previous": False})
    first = statements.get(connection, plain)
    assert [statements.get(connection, plain) for _ in range(3)] == [first] * 3
    assert "digest" in statements.get(connection, rehashed)
    assert built == [plain, rehashed]
