"""SELECTs of whole model rows whose SQL and converters are built once, not at every request.

Building a query through the ORM (resolving lookups, joins, ordering, converters) costs several
times more than running it. The few statements on every API request (load the key and its
owner, load the flow to run) are compiled here once per database connection from the models'
own metadata: table and column names, quoting and value converters all come from Django, so
the rows are the same model instances the ORM would give (tests hold each statement to it).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, connections


@dataclass(frozen=True)
class Selection:
    """The columns of one model in a SELECT, in order."""

    model: type
    fields: tuple
    table_alias: str

    def columns(self, quote) -> list[str]:
        return [f"{quote(self.table_alias)}.{quote(field.column)}" for field in self.fields]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    selections: tuple[Selection, ...]
    attnames: tuple[tuple[str, ...], ...]
    positions: tuple[dict[str, int], ...]  # per selection: attname -> column index in the row
    converters: tuple  # per column: (expression, [converter, ...])
    converted: tuple  # (index, expression, converters) of the columns that have converters


class CompiledSelect:
    """One SELECT statement, compiled per connection; ``rows()`` returns model instances.

    ``build(connection)`` returns ``(selections, sql_after_columns)``: the models whose columns
    are selected (in order), and the rest of the statement (``FROM ... WHERE ...``) with ``%s``
    placeholders. Converters are bound to a connection object (each thread has its own), so
    the compiled form is kept per connection and goes away with it.
    """

    def __init__(self, build: Callable):
        self._build = build
        self._compiled: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def _compile(self, connection) -> _Compiled:
        compiled = self._compiled.get(connection)
        if compiled is None:
            selections, rest = self._build(connection)
            quote = connection.ops.quote_name
            columns = [column for selection in selections for column in selection.columns(quote)]
            converters = []
            for selection in selections:
                for field in selection.fields:
                    expression = field.get_col(selection.table_alias)
                    converters.append(
                        (expression,
                         connection.ops.get_db_converters(expression) + expression.get_db_converters(connection))
                    )
            attnames = tuple(tuple(field.attname for field in selection.fields) for selection in selections)
            positions, start = [], 0
            for names in attnames:
                positions.append({name: start + offset for offset, name in enumerate(names)})
                start += len(names)
            compiled = self._compiled[connection] = _Compiled(
                sql=f"SELECT {', '.join(columns)} {rest}",
                selections=tuple(selections),
                attnames=attnames,
                positions=tuple(positions),
                converters=tuple(converters),
                converted=tuple((index, expression, functions)
                                for index, (expression, functions) in enumerate(converters) if functions),
            )
        return compiled

    def fetch(self, params: Sequence, *, using: str = DEFAULT_DB_ALIAS) -> list[FetchedRow]:
        """Run the statement; return its rows, whose values are converted only when read."""
        connection = connections[using]
        compiled = self._compile(connection)
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            raw_rows = cursor.fetchall()
        return [FetchedRow(compiled, connection, using, raw) for raw in raw_rows]

    def rows(self, params: Sequence, *, using: str = DEFAULT_DB_ALIAS) -> list[tuple]:
        """Run the statement; return one tuple of model instances (one per selection) a row."""
        return [row.instances() for row in self.fetch(params, using=using)]


class FetchedRow:
    """One row of a CompiledSelect: read a few columns, and build the model instances only if needed.

    Refusing a wrong API key needs its digests and id, not a key and a user object: the
    refusal must not cost more than an accepted key.
    """

    def __init__(self, compiled: _Compiled, connection, using: str, raw: tuple):
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
        for selection, attnames in zip(self._compiled.selections, self._compiled.attnames):
            end = start + len(attnames)
            instances.append(selection.model.from_db(self._using, attnames, values[start:end]))
            start = end
        return tuple(instances)
