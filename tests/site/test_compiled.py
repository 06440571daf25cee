"""core.compiled's parameter shortcuts give exactly what Django's fields give for the same values."""

import datetime
import uuid

import pytest
from django.db import connection
from django.utils import timezone

from apikeys.models import ApiKey, ApiKeyRequest
from core.compiled import _adapter, column_field, prepared
from flows.models import Message

pytestmark = pytest.mark.django_db

AWARE = timezone.now()
VALUES = {
    "uuid": [uuid.uuid4(), str(uuid.uuid4()), None],
    "datetime": [AWARE, AWARE.astimezone(datetime.timezone(datetime.timedelta(hours=5))), None],
    "text": ["plain", "ünïcode", "", None],
    "integer": [0, 200, 65535, "7", None],
    "address": ["127.0.0.1", "", "::1", "2001:DB8::1", "::ffff:10.0.0.1", None],
}
COLUMNS = [
    (ApiKeyRequest, "api_key_id", "uuid"), (ApiKeyRequest, "created_at", "datetime"),
    (ApiKeyRequest, "path", "text"), (Message, "id", "uuid"), (Message, "flow_id", "uuid"),
    (Message, "text", "text"), (Message, "timestamp", "datetime"), (ApiKey, "last_used_at", "datetime"),
    (ApiKeyRequest, "status", "integer"), (ApiKey, "total_uses", "integer"), (ApiKeyRequest, "client_ip", "address"),
]


@pytest.mark.parametrize(("model", "attname", "kind"), COLUMNS)
def test_an_insert_parameter_is_what_get_db_prep_save_makes(model, attname, kind):
    field = column_field(model, attname)
    adapt = _adapter(field, connection)
    for value in VALUES[kind]:
        expected = None if value is None else field.get_db_prep_save(value, connection)
        assert (type(adapt(value)), adapt(value)) == (type(expected), expected), value


@pytest.mark.parametrize(("model", "attname", "kind"), COLUMNS)
def test_a_lookup_parameter_is_what_get_db_prep_value_makes(model, attname, kind):
    field = column_field(model, attname)
    for value in VALUES[kind]:
        expected = field.get_db_prep_value(value, connection, prepared=False)
        assert (type(prepared(model, attname, value)), prepared(model, attname, value)) == (type(expected), expected), value


def test_other_fields_take_the_generic_path(monkeypatch):
    field = column_field(Message, "properties")
    monkeypatch.setattr(field, "get_db_prep_save", lambda value, connection: ("prepared by the field", value))
    assert _adapter(field, connection)({"a": [1]}) == ("prepared by the field", {"a": [1]})


def test_a_row_builds_the_instance_from_db_builds(user, make_key):
    from django.contrib.auth import get_user_model

    from apikeys import queries
    from core.compiled import from_db

    api_key, _ = make_key(user)
    row, known = queries.find_key_or_decoy(api_key.lookup_id)
    assert known
    fast_key, fast_user = row.instances()
    for fast, model in ((fast_key, ApiKey), (fast_user, get_user_model())):
        attnames = tuple(field.attname for field in model._meta.concrete_fields)
        values = [getattr(fast, name) for name in attnames]
        slow = model.from_db("default", attnames, values)
        assert {k: v for k, v in vars(fast).items() if k != "_state"} == {
            k: v for k, v in vars(slow).items() if k != "_state"}
        assert (fast._state.adding, fast._state.db) == (slow._state.adding, slow._state.db) == (False, "default")
        assert fast == slow and fast.get_deferred_fields() == set()
    assert fast_user.pk == user.pk and fast_key.pk == api_key.pk
    fast_key.name = "renamed through an instance built from a row"
    fast_key.save(update_fields=["name"])
    assert ApiKey.objects.get(pk=api_key.pk).name == fast_key.name
    # A receiver of post_init must see every instance: then the ORM's own path is taken.
    seen = []
    from django.db.models.signals import post_init

    def note(sender, instance, **kwargs):
        seen.append(instance)

    post_init.connect(note, sender=ApiKey)
    try:
        attnames = tuple(field.attname for field in ApiKey._meta.concrete_fields)
        built = from_db(ApiKey, "default", attnames, [getattr(fast_key, name) for name in attnames])
    finally:
        post_init.disconnect(note, sender=ApiKey)
    assert seen == [built]
