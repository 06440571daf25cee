"""Count each key's uses per UTC day inside the UPDATE that already counts them.

A trigger on ``apikeys_apikey.total_uses`` upserts ``apikeys_apikeydailyusage``: the usage
chart costs no extra query per request, and concurrent uses are all counted (the UPDATE
holds the key's row lock while the trigger runs). SQLite and PostgreSQL are supported, the
databases this project runs and tests on; elsewhere no trigger is installed and the chart
stays empty.
"""

from django.db import migrations

SQLITE_CREATE = """
CREATE TRIGGER apikeys_count_daily_use
AFTER UPDATE OF total_uses ON apikeys_apikey
WHEN NEW.total_uses > OLD.total_uses
BEGIN
    INSERT INTO apikeys_apikeydailyusage (api_key_id, day, uses)
    VALUES (NEW.id, date('now'), NEW.total_uses - OLD.total_uses)
    ON CONFLICT (api_key_id, day) DO UPDATE SET uses = uses + excluded.uses;
END
"""
SQLITE_DROP = "DROP TRIGGER IF EXISTS apikeys_count_daily_use"

POSTGRESQL_CREATE = [
    """
    CREATE OR REPLACE FUNCTION apikeys_count_daily_use() RETURNS trigger AS $$
    BEGIN
        INSERT INTO apikeys_apikeydailyusage (api_key_id, day, uses)
        VALUES (NEW.id, (now() AT TIME ZONE 'UTC')::date, NEW.total_uses - OLD.total_uses)
        ON CONFLICT (api_key_id, day)
        DO UPDATE SET uses = apikeys_apikeydailyusage.uses + EXCLUDED.uses;
        RETURN NULL;
    END;
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER apikeys_count_daily_use
    AFTER UPDATE OF total_uses ON apikeys_apikey
    FOR EACH ROW WHEN (NEW.total_uses > OLD.total_uses)
    EXECUTE FUNCTION apikeys_count_daily_use()
    """,
]
POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS apikeys_count_daily_use ON apikeys_apikey",
    "DROP FUNCTION IF EXISTS apikeys_count_daily_use()",
]


CREATE = {"sqlite": [SQLITE_CREATE], "postgresql": POSTGRESQL_CREATE}
DROP = {"sqlite": [SQLITE_DROP], "postgresql": POSTGRESQL_DROP}


def create_trigger(apps, schema_editor):
    for statement in CREATE.get(schema_editor.connection.vendor, []):
        schema_editor.execute(statement)


def drop_trigger(apps, schema_editor):
    for statement in DROP.get(schema_editor.connection.vendor, []):
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("apikeys", "0003_lifecycle")]

    operations = [migrations.RunPython(create_trigger, drop_trigger)]
