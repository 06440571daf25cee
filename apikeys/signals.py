"""Keep the daily-usage trigger installed whatever later migrations do to its table."""

import importlib

_daily_usage = importlib.import_module("apikeys.migrations.0004_daily_usage_trigger")


def reinstall_daily_usage_trigger(sender, *, using="default", plan=None, **kwargs):
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
