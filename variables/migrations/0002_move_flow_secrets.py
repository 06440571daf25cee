"""Existing flows: literal keys in their JSON move into Credential variables, as saves do now
(``variables.flowsecrets``). A flow at a time, each in its own transaction with its variables."""

from django.db import migrations, transaction


def move_flow_secrets(apps, schema_editor):
    from variables import flowsecrets

    Flow = apps.get_model("flows", "Flow")
    Variable = apps.get_model("variables", "Variable")
    names_by_owner = {}
    for flow in Flow.objects.only("pk", "name", "owner_id", "data").iterator(chunk_size=100):
        taken = names_by_owner.setdefault(flow.owner_id, flowsecrets.owner_names(flow.owner_id, Variable))
        pending = flowsecrets.plan_secrets(flow.data, flow_name=flow.name, taken_names=taken)
        if pending:
            with transaction.atomic():
                flowsecrets.store_secrets(flow.owner_id, pending, model=Variable)
                flow.save(update_fields=["data", "updated_at"])


class Migration(migrations.Migration):

    dependencies = [
        ("variables", "0001_initial"),
        ("flows", "0001_initial"),
    ]

    operations = [migrations.RunPython(move_flow_secrets, migrations.RunPython.noop)]
