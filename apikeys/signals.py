"""Signal receivers: the daily-usage trigger kept installed, and keys' scopes kept clear of deleted flows."""

import importlib

_daily_usage = importlib.import_module("apikeys.migrations.0004_daily_usage_trigger")


def reinstall_daily_usage_trigger(sender, *, using="default", **kwargs):
    """Drop and create the trigger after every ``migrate`` (idempotent, a few milliseconds).

    SQLite rebuilds a table to alter it, and the rebuild silently drops the table's triggers;
    a future migration on ``apikeys_apikey`` would otherwise leave the usage chart empty with no
    error anywhere.
    """
    from django.db import connections

    connection = connections[using]
    tables = set(connection.introspection.table_names())
    if not {"apikeys_apikey", "apikeys_apikeydailyusage"} <= tables:
        return  # migrated backwards past the tables
    with connection.schema_editor() as schema_editor:
        _daily_usage.drop_trigger(None, schema_editor)
        _daily_usage.create_trigger(None, schema_editor)


def forget_deleted_flow(sender, instance, **kwargs):
    """Take a flow being deleted (by the API, a page, the admin or a cascade) out of every key
    limited to it, in the deleting transaction, so that its id, reused, grants nothing."""
    from .services import remove_flow_from_key_scopes

    remove_flow_from_key_scopes(instance)


def note_keys_left_without_flows(sender, flow, **kwargs) -> str:
    """Answer flows.signals.deletion_notes: name the keys that deleting ``flow`` would leave reaching no flow."""
    from .templatetags.apikey_flows import flow_delete_note

    return flow_delete_note(flow)
