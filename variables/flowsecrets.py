"""Secrets found in flows: a key field holding a literal value becomes a Credential variable.

A field the template marks ``password: true`` (an API key, a token) that holds a literal value
instead of loading a global variable would store the secret in clear in the flow's JSON, which
the API returns and the pages show. On every save and import the value moves into a new
Credential variable of the flow's owner (named after the flow and the field, e.g.
``BASIC_PROMPTING_API_KEY``, made unique), and the field then loads it (``load_from_db: true``,
the variable's name as its value), as Langflow's own global variables work.

Two steps, because a flow is checked and compiled outside any transaction, then written in a
short one: ``plan_secrets`` rewrites the flow's data (before it is checked and compiled, so the
compiled graph never holds the secret) and returns what to store; ``store_secrets`` creates the
variables in the flow's own transaction. Pure on the data; the model class is a parameter so
that the data migration can pass its historical one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from . import crypto
from .models import Variable, VariableType


@dataclass
class PendingSecret:
    node_id: str
    field: str
    variable: str  # the Credential's name
    value: str = dataclass_field(repr=False)

    def described(self) -> dict[str, str]:
        """What the API and the pages may say about it: where it was and where it went, never the value."""
        return {"node_id": self.node_id, "field": self.field, "variable": self.variable}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").upper()


def literal_secret_fields(data: Any):
    """Yield ``(node_id, field name, template field)`` for each key field holding a literal value."""
    nodes = data.get("nodes") if isinstance(data, dict) else None
    for node in nodes if isinstance(nodes, list) else ():
        inner = node.get("data", {}).get("node", {}) if isinstance(node, dict) and isinstance(node.get("data"), dict) else {}
        template = inner.get("template") if isinstance(inner, dict) else None
        if not isinstance(template, dict):
            continue
        for name, spec in template.items():
            if (isinstance(spec, dict) and spec.get("password") is True and not spec.get("load_from_db")
                    and isinstance(spec.get("value"), str) and spec["value"].strip()):
                yield str(node.get("id", "")), name, spec


def plan_secrets(data: Any, *, flow_name: str, taken_names) -> list[PendingSecret]:
    """Move every literal secret of ``data`` (changed in place) to a variable name; return them.

    ``taken_names`` is called (at most once, only when a secret is found) for the set of names
    not to use; names given here are added to it, so one import of many flows shares it."""
    found = list(literal_secret_fields(data))
    if not found:
        return []
    taken = taken_names()
    fields_here = [name for _, name, _ in found]
    pending = []
    for node_id, name, spec in found:
        wanted = _slug(f"{flow_name} {name}") if fields_here.count(name) == 1 else _slug(f"{flow_name} {node_id} {name}")
        wanted = (wanted or "FLOW_SECRET")[:200]
        variable, number = wanted, 1
        while variable in taken:
            number += 1
            variable = f"{wanted}_{number}"
        taken.add(variable)
        pending.append(PendingSecret(node_id=node_id, field=name, variable=variable, value=spec["value"]))
        spec["value"] = variable
        spec["load_from_db"] = True
    return pending


def owner_names(owner_id, model=Variable):
    """A ``taken_names`` for ``plan_secrets``: the owner's variable names, read once, when first
    needed, then shared by every flow it is given to (one import of many flows)."""
    read: list[set[str]] = []

    def taken_names() -> set[str]:
        if not read:
            read.append(set(model.objects.filter(owner_id=owner_id).values_list("name", flat=True)))
        return read[0]

    return taken_names


def store_secrets(owner_id, pending: list[PendingSecret], model=Variable) -> list[dict[str, str]]:
    """Create the Credential variables (inside the caller's transaction); return their descriptions."""
    rows = []
    for secret in pending:
        version, token = crypto.encrypt(secret.value, owner_id=owner_id, name=secret.variable)
        rows.append(model(owner_id=owner_id, name=secret.variable, type=VariableType.CREDENTIAL.value,
                          value=token, key_version=version, default_fields=[secret.field]))
    try:
        with transaction.atomic():
            model.objects.bulk_create(rows)
    except IntegrityError:
        raise ValidationError("A variable took one of the names chosen for this flow's keys meanwhile: "
                              "save the flow again.") from None
    return [secret.described() for secret in pending]
