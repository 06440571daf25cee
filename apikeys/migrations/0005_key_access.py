"""Fine-grained keys: flow scope, permissions and allowed IPs on the key row.

SQLite adds these columns by rebuilding ``apikeys_apikey``, which drops the table's triggers:
the daily-usage trigger of 0004 is installed again after the rebuild (and after the rebuild
that reverting causes).
"""

import importlib

import apikeys.models
from django.db import migrations, models

_daily_usage = importlib.import_module("apikeys.migrations.0004_daily_usage_trigger")


def reinstall_daily_usage_trigger_on_sqlite(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        _daily_usage.drop_trigger(apps, schema_editor)
        _daily_usage.create_trigger(apps, schema_editor)


class Migration(migrations.Migration):

    dependencies = [
        ('apikeys', '0004_daily_usage_trigger'),
    ]

    operations = [
        migrations.RunPython(migrations.RunPython.noop, reinstall_daily_usage_trigger_on_sqlite),
        migrations.AddField(
            model_name='apikey',
            name='all_flows',
            field=models.BooleanField(default=True, help_text='Every flow of the owner. Off: only the flows in flow_ids (none when it is empty).'),
        ),
        migrations.AddField(
            model_name='apikey',
            name='allowed_ips',
            field=models.JSONField(blank=True, default=list, help_text='Networks (CIDR) the key may be used from; empty: anywhere.'),
        ),
        migrations.AddField(
            model_name='apikey',
            name='flow_ids',
            field=models.JSONField(blank=True, default=list, help_text='The flows (ids) of a key limited to chosen flows.'),
        ),
        migrations.AddField(
            model_name='apikey',
            name='permissions',
            field=models.JSONField(default=apikeys.models.all_permissions, help_text='Some of run, read, write.'),
        ),
        migrations.AlterField(
            model_name='apikeyevent',
            name='kind',
            field=models.CharField(choices=[('created', 'Created'), ('rotated', 'Rotated'), ('revoked', 'Revoked'), ('expired', 'Expired'), ('auth_failed', 'Failed authentication'), ('access_changed', 'Access changed')], max_length=20),
        ),
        migrations.RunPython(reinstall_daily_usage_trigger_on_sqlite, migrations.RunPython.noop),
    ]
