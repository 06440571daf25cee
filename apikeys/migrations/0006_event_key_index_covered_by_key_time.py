"""Drop the audit log's own index on ``api_key``: ``apikeys_event_key_time`` (api_key, -created_at)
starts with the same column and serves every lookup by key, and one index less to maintain keeps
a refused key's audit line cheaper than a valid key's use.

The index is dropped by name: letting AlterField find it on PostgreSQL also drops the partial
unique index ``apikeys_one_expiry_event_per_key``, which is on the same column.
"""

import django.db.models.deletion
from django.db import migrations, models

INDEX = "apikeys_apikeyevent_api_key_id_1b6a712d"


class Migration(migrations.Migration):

    dependencies = [
        ("apikeys", "0005_key_access"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="apikeyevent",
                    name="api_key",
                    field=models.ForeignKey(
                        blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.CASCADE,
                        related_name="events", to="apikeys.apikey",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{INDEX}"',
                    f'CREATE INDEX IF NOT EXISTS "{INDEX}" ON "apikeys_apikeyevent" ("api_key_id")',
                ),
            ],
        ),
    ]
