import re

import django.core.validators
from django.db import migrations, models

WHOLE_NAME = re.compile(r"\A[a-zA-Z0-9_-]+\Z")


def repair_endpoint_names(apps, schema_editor):
    """Names stored under the old check ("echo\\n") could never be run: keep them trimmed when that
    is a valid name the owner does not use yet, else clear them (the flow still runs by its id)."""
    Flow = apps.get_model("flows", "Flow")
    for flow in Flow.objects.exclude(endpoint_name=None).only("pk", "owner_id", "endpoint_name").iterator():
        if WHOLE_NAME.search(flow.endpoint_name):
            continue
        trimmed = flow.endpoint_name.strip()
        taken = Flow.objects.filter(owner_id=flow.owner_id, endpoint_name=trimmed).exclude(pk=flow.pk).exists()
        new_name = trimmed if WHOLE_NAME.search(trimmed) and not taken else None
        Flow.objects.filter(pk=flow.pk).update(endpoint_name=new_name)


class Migration(migrations.Migration):

    dependencies = [
        ("flows", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="flow",
            name="endpoint_name",
            field=models.CharField(blank=True, help_text="Optional name to run the flow by, instead of its id.",
                                   max_length=255, null=True,
                                   validators=[django.core.validators.RegexValidator(
                                       "\\A[a-zA-Z0-9_-]+\\Z", "Use only letters, digits, '-' and '_'.")]),
        ),
        migrations.AlterField(
            model_name="flow",
            name="description",
            field=models.TextField(blank=True, default="",
                                   validators=[django.core.validators.ProhibitNullCharactersValidator()]),
        ),
        migrations.AlterField(
            model_name="flow",
            name="name",
            field=models.CharField(max_length=255, validators=[django.core.validators.ProhibitNullCharactersValidator()]),
        ),
        migrations.RunPython(repair_endpoint_names, migrations.RunPython.noop),
    ]
