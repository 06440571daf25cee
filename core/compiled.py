"""Statements of the hot path whose SQL, converters and field lists are built once per connection.

Building a query through the ORM (resolving lookups, joins, ordering, converters) costs several
times more than running it. The few statements on every API request (load the key and its owner,
count its use, load the flow to run, write a refused key's audit line) are compiled here from the
models' own metadata, so table and column names, quoting and value conversion all come from Django
and the rows are the model instances the ORM would give (tests hold each statement to it).

One caching rule for all three kinds: a statement is a family of variants (``**variant``: which
columns, which conditions), each compiled the first time a connection uses it and kept in a
``WeakKeyDictionary`` keyed by that connection object, so it goes away with the connection (each
thread has its own, and converters are bound to one).

The ORM internals relied on, all public or long-stable parts of Django's query compiler:

- ``Model._meta.concrete_fields``, ``Model._meta.get_field``, ``Field.column``, ``Field.attname``;
- ``connection.ops.quote_name``;
- ``Field.get_col(alias)``, ``connection.ops.get_db_converters(expression)`` and
  ``expression.get_db_converters(connection)``: how a SELECT's values are converted;
- ``Model.from_db(using, attnames, values)``: the instance the ORM would build from a row, which
  ``from_db`` builds directly when every field is given and no ``pre_init``/``post_init``
  receiver listens (``ModelState``, and an instance's fields living in its ``__dict__`` under
  their attnames);
- ``Field.get_db_prep_value(value, connection, prepared=False)`` and
  ``Field.get_db_prep_save(value, connection)``: how a parameter is written; for an INSERT's
  text, UUIDs and aware datetimes, what they do for such values (``connection.features.
  has_native_uuid_field``, ``connection.ops.adapt_datetimefield_value``), done directly.
"""

from __future__ import annotations

import datetime
import functools
import uuid
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models.base import ModelState
from django.db.models.fields import AutoFieldMixin
from django.db.models.signals import post_init, pre_init


class _PerConnection:
    """The compiled variants of one statement, per connection object: ``compile(connection, **variant)``."""

    def __init__(self, compile: Callable[..., Any]):
        self._compile = compile
        self._by_connection: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def get(self, connection, variant: dict[str, Any]):
        variants = self._by_connection.get(connection)
        if variants is None:
            variants = self._by_connection[connection] = {}
        key = tuple(variant.items())
        compiled = variants.get(key)
        if compiled is None:
            compiled = variants[key] = self._compile(connection, **variant)
        return compiled


# --- SELECT -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Selection:
    """The columns of one model in a SELECT, in order."""

    model: type[models.Model]
    fields: tuple[models.Field, ...]
    table_alias: str

    def columns(self, quote) -> list[str]:
        return [f"{quote(self.table_alias)}.{quote(field.column)}" for field in self.fields]


@dataclass(frozen=True)
class _CompiledSelect:
    sql: str
    selections: tuple[Selection, ...]
    attnames: tuple[tuple[str, ...], ...]
    positions: tuple[dict[str, int], ...]  # per selection: attname -> column index in the row
    converters: tuple  # per column: (expression, [converter, ...])
    converted: tuple  # (index, expression, converters) of the columns that have converters


class CompiledSelect:
    """A SELECT of whole model rows; ``rows()`` returns model instances.

    ``build(connection, **variant)`` returns ``(selections, sql_after_columns)``: the models whose
    columns are selected (in order), and the rest of the statement (``FROM ... WHERE ...``) with
    ``%s`` placeholders.
    """

    def __init__(self, build: Callable[..., tuple[list[Selection], str]]):
        self._build = build
        self._compiled = _PerConnection(self._compile)

    def _compile(self, connection, **variant) -> _CompiledSelect:
        selections, rest = self._build(connection, **variant)
        quote = connection.ops.quote_name
        columns = [column for selection in selections for column in selection.columns(quote)]
        converters = []
        for selection in selections:
            for field in selection.fields:
                expression = field.get_col(selection.table_alias)
                converters.append(
                    (expression, connection.ops.get_db_converters(expression) + expression.get_db_converters(connection))
                )
        attnames = tuple(tuple(field.attname for field in selection.fields) for selection in selections)
        positions, start = [], 0
        for names in attnames:
            positions.append({name: start + offset for offset, name in enumerate(names)})
            start += len(names)
        return _CompiledSelect(
            sql=f"SELECT {', '.join(columns)} {rest}",
            selections=tuple(selections),
            attnames=attnames,
            positions=tuple(positions),
            converters=tuple(converters),
            converted=tuple((index, expression, functions)
                            for index, (expression, functions) in enumerate(converters) if functions),
        )

    def fetch(self, params: Sequence, *, using: str = DEFAULT_DB_ALIAS, **variant) -> list[FetchedRow]:
        """Run the statement; return its rows, whose values are converted only when read."""
        connection = connections[using]
        compiled = self._compiled.get(connection, variant)
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            raw_rows = cursor.fetchall()
        return [FetchedRow(compiled, connection, using, raw) for raw in raw_rows]

    def rows(self, params: Sequence, *, using: str = DEFAULT_DB_ALIAS, **variant) -> list[tuple]:
        """Run the statement; return one tuple of model instances (one per selection) a row."""
        return [row.instances() for row in self.fetch(params, using=using, **variant)]


class FetchedRow:
    """One row of a CompiledSelect: read a few columns, and build the model instances only if needed.

    Refusing a wrong API key needs its digests and id, not a key and a user object: the
    refusal must not cost more than an accepted key.
    """

    def __init__(self, compiled: _CompiledSelect, connection, using: str, raw: tuple):
        self._compiled, self._connection, self._using, self._raw = compiled, connection, using, raw

    def _convert(self, index: int):
        value = self._raw[index]
        expression, converters = self._compiled.converters[index]
        for converter in converters:
            value = converter(value, expression, self._connection)
        return value

    def value(self, attname: str, selection: int = 0):
        """Return one column of one selection (the first: the main model), converted."""
        return self._convert(self._compiled.positions[selection][attname])

    def instances(self) -> tuple:
        values = list(self._raw)
        for index, expression, converters in self._compiled.converted:  # most columns have none
            value = values[index]
            for converter in converters:
                value = converter(value, expression, self._connection)
            values[index] = value
        instances, start = [], 0
        for selection, attnames in zip(self._compiled.selections, self._compiled.attnames, strict=True):
            end = start + len(attnames)
            instances.append(from_db(selection.model, self._using, attnames, values[start:end]))
            start = end
        return tuple(instances)


def from_db(model: type[models.Model], using: str, attnames: tuple[str, ...], values: Sequence) -> models.Model:
    """``model.from_db(using, attnames, values)``'s instance, built without ``Model.__init__``'s
    generic work when nothing could tell the difference: every concrete field given, and no
    ``pre_init``/``post_init`` receiver. Each value then lands in the instance's ``__dict__``
    exactly where ``__init__`` would put it (a field's attname), with the same ``_state``."""
    if (len(attnames) != len(model._meta.concrete_fields)
            or pre_init.has_listeners(model) or post_init.has_listeners(model)):
        return model.from_db(using, attnames, values)
    instance = model.__new__(model)
    instance.__dict__.update(zip(attnames, values, strict=True))
    state = instance._state = ModelState()
    state.adding, state.db = False, using
    return instance


# --- UPDATE -------------------------------------------------------------------------------------

class CompiledUpdate:
    """An UPDATE (or any statement that returns no rows): ``build(connection, **variant)`` returns its
    SQL with ``%s`` placeholders; ``execute`` returns the number of rows it changed."""

    def __init__(self, build: Callable[..., str]):
        self._compiled = _PerConnection(build)

    def execute(self, params: Sequence, *, using: str = DEFAULT_DB_ALIAS, **variant) -> int:
        connection = connections[using]
        with connection.cursor() as cursor:
            cursor.execute(self._compiled.get(connection, variant), params)
            return cursor.rowcount


@functools.cache
def column_field(model: type[models.Model], name: str) -> models.Field:
    """The field of ``model`` named ``name`` that is a column (not a reverse relation).

    Cached: ``prepared`` asks for the same few fields on every request."""
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field):
        raise TypeError(f"{model.__name__}.{name} is a reverse relation, not a column.")
    return field


def _lookup_adapter(connection, *, model: type[models.Model], attname: str) -> Callable[[Any], Any]:
    return _adapter(column_field(model, attname), connection, save=False)


_lookup_adapters = _PerConnection(_lookup_adapter)


def prepared(model: type[models.Model], attname: str, value, using: str = DEFAULT_DB_ALIAS):
    """``value`` as a parameter for the column of ``model.attname``, prepared as the ORM would
    (``get_db_prep_value``; the shortcuts of ``_adapter`` kept per connection)."""
    return _lookup_adapters.get(connections[using], {"model": model, "attname": attname})(value)


# --- INSERT -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _CompiledInsert:
    sql: str
    adapters: tuple[Callable[[Any], Any], ...]  # per column given in the rows: value -> parameter
    constants: tuple[Any, ...]  # the parameters of the constant columns, prepared once


def _adapter(field: models.Field, connection, *, save: bool = True) -> Callable[[Any], Any]:
    """How a value of ``field`` becomes a parameter, as ``field.get_db_prep_save`` makes it, with
    shortcuts for the values the hot path writes (text, UUIDs, aware datetimes, integers, IPv4
    addresses) that give the very same parameter without the generic path's checks. Anything
    else takes the generic path.
    """

    def generic(value):
        if save:
            return None if value is None else field.get_db_prep_save(value, connection)
        return field.get_db_prep_value(value, connection, prepared=False)

    target = field.target_field if isinstance(field, models.ForeignKey) else field
    if type(field) in (models.CharField, models.TextField):
        return lambda value: value if value is None or type(value) is str else generic(value)
    if isinstance(target, models.UUIDField):
        native = connection.features.has_native_uuid_field
        return lambda value: (value if native else value.hex) if type(value) is uuid.UUID else generic(value)
    if type(field) is models.DateTimeField:
        adapt = connection.ops.adapt_datetimefield_value
        return lambda value: (adapt(value) if type(value) is datetime.datetime and value.tzinfo is not None
                              else generic(value))
    if isinstance(field, models.IntegerField) and not isinstance(field, AutoFieldMixin):
        adapt_integer, internal_type = connection.ops.adapt_integerfield_value, field.get_internal_type()
        return lambda value: adapt_integer(value, internal_type) if type(value) is int else generic(value)
    if type(field) is models.GenericIPAddressField:  # IPv6 text is normalised: the generic path
        adapt_address = connection.ops.adapt_ipaddressfield_value
        return lambda value: adapt_address(value) if type(value) is str and ":" not in value else generic(value)
    return generic


class CompiledInsert:
    """An INSERT of rows of ``model`` from dicts of attnames, the values prepared by the same
    fields ``Model(**row).save()`` would use. The variant is the set of columns given.

    ``constants`` are columns every row gets the same value in (attname: value): prepared once
    per connection, not once per row.
    """

    def __init__(self, model: type[models.Model], *, constants: dict[str, Any] | None = None):
        self._model = model
        self._constants = dict(constants or {})
        self._compiled = _PerConnection(self._compile)

    def _compile(self, connection, *, attnames: tuple[str, ...]) -> _CompiledInsert:
        quote = connection.ops.quote_name
        meta = self._model._meta
        fields = tuple(column_field(self._model, name) for name in attnames)
        constant_fields = tuple(column_field(self._model, name) for name in self._constants)
        columns = ", ".join(quote(field.column) for field in fields + constant_fields)
        placeholders = ", ".join(["%s"] * (len(fields) + len(constant_fields)))
        return _CompiledInsert(
            sql=f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({placeholders})",
            adapters=tuple(_adapter(field, connection) for field in fields),
            constants=tuple(_adapter(field, connection)(value)
                            for field, value in zip(constant_fields, self._constants.values(), strict=True)),
        )

    def insert(self, row: dict[str, Any], *, using: str = DEFAULT_DB_ALIAS) -> None:
        self.insert_many([row], using=using)

    def insert_many(self, rows: Sequence[dict[str, Any]], *, using: str = DEFAULT_DB_ALIAS) -> None:
        """Insert ``rows`` (dicts with the same attnames, in the same order) with one prepared
        statement run once per row (``executemany``). Atomic only inside a transaction."""
        if not rows:
            return
        connection = connections[using]
        compiled = self._compiled.get(connection, {"attnames": tuple(rows[0])})
        adapters, constants = compiled.adapters, compiled.constants
        params = [[*(adapt(value) for adapt, value in zip(adapters, row.values(), strict=True)), *constants]
                  for row in rows]
        with connection.cursor() as cursor:
            if len(params) == 1:
                cursor.execute(compiled.sql, params[0])
            else:
                cursor.executemany(compiled.sql, params)
