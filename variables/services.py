"""Operations on variables: create, change, delete, read a value, re-encrypt.

Every function raises ``django.core.exceptions.ValidationError`` for bad input (a form shows
it; the API answers 400, as Langflow does) and ``crypto.UndecryptableValue`` when a Credential's
key is gone. A Credential's value is encrypted before it reaches the database and is returned
by ``reveal`` only, which the run planner alone calls: nothing else shows it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from . import crypto
from .models import Variable, VariableType

logger = logging.getLogger("variables")

MAX_VALUE_CHARS = 64 * 1024
MAX_DEFAULT_FIELDS = 100
NAME_EXISTS = "Variable name already exists"
NAME_EMPTY = "Variable name cannot be empty"
VALUE_EMPTY = "Variable value cannot be empty"
VARIABLE_NOT_FOUND = "Variable not found"


def clean_name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValidationError(NAME_EMPTY)
    if name != name.strip() or len(name) > 255 or any(ord(char) < 32 or ord(char) == 127 for char in name):
        raise ValidationError("Variable name must be at most 255 characters, without control characters "
                              "or spaces at either end.")
    return name


def clean_value(value) -> str:
    if not isinstance(value, str) or value == "":
        raise ValidationError(VALUE_EMPTY)
    if len(value) > MAX_VALUE_CHARS or "\x00" in value:
        raise ValidationError(f"Variable value must be at most {MAX_VALUE_CHARS:,} characters, without NUL.")
    return value


def clean_default_fields(fields) -> list[str]:
    if fields is None:
        return []
    if (not isinstance(fields, list) or len(fields) > MAX_DEFAULT_FIELDS
            or not all(isinstance(field, str) and 0 < len(field) <= 255 for field in fields)):
        raise ValidationError(f"default_fields must be a list of at most {MAX_DEFAULT_FIELDS} field names.")
    return list(dict.fromkeys(fields))


def _seal(variable: Variable, value: str) -> None:
    """Put ``value`` in the row: encrypted (bound to the row's owner and name) for a Credential."""
    if variable.type == VariableType.CREDENTIAL:
        variable.key_version, variable.value = crypto.encrypt(value, owner_id=variable.owner_id, name=variable.name)
    else:
        variable.key_version, variable.value = None, value


def reveal(variable: Variable) -> str:
    """The variable's value in clear, for a run. Raises UndecryptableValue (naming it) when its key is gone."""
    if variable.type != VariableType.CREDENTIAL:
        return variable.value
    return crypto.decrypt(variable.value, version=variable.key_version, owner_id=variable.owner_id,
                          name=variable.name)


def _write(variable: Variable, **save_kwargs) -> Variable:
    try:
        with transaction.atomic():
            variable.save(**save_kwargs)
    except IntegrityError:
        raise ValidationError(NAME_EXISTS) from None
    return variable


def create_variable(*, owner, name: str, value: str, type: str = VariableType.CREDENTIAL,
                    default_fields: Iterable[str] | None = None) -> Variable:
    """Create ``owner``'s variable (a Credential unless told otherwise, as Langflow does)."""
    if type not in VariableType.values:
        raise ValidationError(f"Variable type must be one of {', '.join(VariableType.values)}.")
    variable = Variable(owner_id=getattr(owner, "pk", owner), name=clean_name(name), type=type,
                        default_fields=clean_default_fields(default_fields))
    _seal(variable, clean_value(value))
    if Variable.objects.owned_by(variable.owner_id).filter(name=variable.name).exists():
        raise ValidationError(NAME_EXISTS)
    return _write(variable, force_insert=True)


def update_variable(variable: Variable, *, name: str | None = None, value: str | None = None,
                    type: str | None = None, default_fields: list[str] | None = None) -> Variable:
    """Change what is given. A Credential renamed or retyped without a new value is decrypted and
    sealed again (its ciphertext is bound to its name): with its key gone, that fails closed."""
    old_name = variable.name
    new_value = clean_value(value) if value is not None else None
    if type is not None and type not in VariableType.values:
        raise ValidationError(f"Variable type must be one of {', '.join(VariableType.values)}.")
    if new_value is None and ((name is not None and name != old_name) or (type is not None and type != variable.type)):
        new_value = reveal(variable)
    if name is not None:
        variable.name = clean_name(name)
        if variable.name != old_name and Variable.objects.owned_by(variable.owner_id).filter(
                name=variable.name).exists():
            raise ValidationError(NAME_EXISTS)
    if type is not None:
        variable.type = type
    if default_fields is not None:
        variable.default_fields = clean_default_fields(default_fields)
    if new_value is not None:
        _seal(variable, new_value)
    return _write(variable)


def delete_variable(variable: Variable) -> None:
    variable.delete()


def reencrypt_all(*, batch: int = 500) -> tuple[int, list[str]]:
    """Seal every Credential not under the newest key again under it, a batch per transaction.

    Returns ``(re-encrypted count, problems)``: a value whose key is gone is left as it is and
    named in ``problems`` (owner id and name), never guessed at."""
    newest = crypto.current_version()
    done, problems = 0, list[str]()
    last_pk = None
    while True:
        rows = Variable.objects.filter(type=VariableType.CREDENTIAL).exclude(key_version=newest).order_by("pk")
        if last_pk is not None:
            rows = rows.filter(pk__gt=last_pk)
        chunk = list(rows[:batch])
        if not chunk:
            return done, problems
        with transaction.atomic():
            for variable in chunk:
                last_pk = variable.pk
                try:
                    plain = reveal(variable)
                except crypto.UndecryptableValue as error:
                    problems.append(f"user {variable.owner_id}: {error}")
                    continue
                _seal(variable, plain)
                variable.save(update_fields=["value", "key_version"])
                done += 1


def free_name(owner_id, wanted: str, taken: set[str]) -> str:
    """``wanted``, else ``wanted_2``, ``wanted_3``...: a name neither in ``taken`` nor the owner's."""
    existing = set(Variable.objects.owned_by(owner_id).filter(name__startswith=wanted).values_list("name", flat=True))
    name, number = wanted, 1
    while name in existing or name in taken:
        number += 1
        name = f"{wanted}_{number}"
    taken.add(name)
    return name
