"""The two statements every key-authenticated request runs, compiled once instead of per request.

Building a query through the ORM (resolving lookups, joins, ordering, converters) costs several
times more than running it: about 0.5 ms of Python for the key+owner SELECT and as much for the
usage UPDATE, against well under 0.1 ms in SQLite. These are the hottest statements of the
product, so their SQL is built once per database from the models' own metadata (table and
column names, quoting, value adaptation and converters all come from Django), and each request
only binds its parameters. Everything else keeps using the ORM.
"""

from __future__ import annotations

import datetime
import functools
import weakref
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connections

from .models import ApiKey


@dataclass(frozen=True)
class _LoadStatement:
    user_model: type
    sql: str
    key_attnames: tuple[str, ...]
    user_attnames: tuple[str, ...]
    converters: tuple  # per selected column: (expression, [converter, ...])


def _column_converters(connection, field):
    column = field.get_col(field.model._meta.db_table)
    return column, connection.ops.get_db_converters(column) + column.get_db_converters(connection)


# Converters are bound to one connection object (each thread has its own), so the compiled
# statement is kept per connection and goes away with it.
_load_statements: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _load_statement(connection, user_model) -> _LoadStatement:
    statement = _load_statements.get(connection)
    if statement is None or statement.user_model is not user_model:
        statement = _load_statements[connection] = _compile_load_statement(connection, user_model)
    return statement


def _compile_load_statement(connection, user_model) -> _LoadStatement:
    quote = connection.ops.quote_name
    key_meta, user_meta = ApiKey._meta, user_model._meta
    key_fields, user_fields = key_meta.concrete_fields, user_meta.concrete_fields
    key_table, user_table = quote(key_meta.db_table), quote(user_meta.db_table)
    columns = [f"{key_table}.{quote(field.column)}" for field in key_fields]
    columns += [f"{user_table}.{quote(field.column)}" for field in user_fields]
    owner_column = quote(key_meta.get_field("user").column)
    sql = (
        f"SELECT {', '.join(columns)} FROM {key_table} "
        f"INNER JOIN {user_table} ON {user_table}.{quote(user_meta.pk.column)} = {key_table}.{owner_column} "
        f"WHERE {key_table}.{quote(key_meta.get_field('lookup_id').column)} = %s LIMIT 1"
    )
    return _LoadStatement(
        user_model=user_model,
        sql=sql,
        key_attnames=tuple(field.attname for field in key_fields),
        user_attnames=tuple(field.attname for field in user_fields),
        converters=tuple(_column_converters(connection, field) for field in (*key_fields, *user_fields)),
    )


def load_key_with_owner(lookup_id: str, *, using: str = DEFAULT_DB_ALIAS) -> ApiKey | None:
    """Return the key with this lookup id, its owner loaded, or None: one indexed query.

    The same objects ``ApiKey.objects.select_related("user").filter(lookup_id=...).first()``
    would give (a test holds the two to it), without building that query each time.
    """
    connection = connections[using]
    statement = _load_statement(connection, get_user_model())
    with connection.cursor() as cursor:
        cursor.execute(statement.sql, [lookup_id])
        row = cursor.fetchone()
    if row is None:
        return None
    values = []
    for value, (expression, converters) in zip(row, statement.converters):
        for converter in converters:
            value = converter(value, expression, connection)
        values.append(value)
    split = len(statement.key_attnames)
    api_key = ApiKey.from_db(using, statement.key_attnames, values[:split])
    api_key.user = get_user_model().from_db(using, statement.user_attnames, values[split:])
    return api_key


@functools.cache
def _count_use_statement(alias: str, vendor: str, *, rehash: bool, rotated: bool, previous: bool) -> str:
    quote = connections[alias].ops.quote_name
    meta = ApiKey._meta

    def column(name: str) -> str:
        return quote(meta.get_field(name).column)

    assignments = [f"{column('total_uses')} = {column('total_uses')} + 1", f"{column('last_used_at')} = %s"]
    if rehash:
        assignments += [f"{column('digest')} = %s", f"{column('pepper_version')} = %s"]
    conditions = [f"{column('id')} = %s", f"{column('revoked_at')} IS NULL"]
    conditions.append(f"{column('rotated_at')} = %s" if rotated else f"{column('rotated_at')} IS NULL")
    if previous:
        conditions.append(f"{column('previous_valid_until')} > %s")
    return f"UPDATE {quote(meta.db_table)} SET {', '.join(assignments)} WHERE {' AND '.join(conditions)}"


def _prep(name: str, value, connection):
    return ApiKey._meta.get_field(name).get_db_prep_value(value, connection, prepared=False)


def count_use(
    api_key: ApiKey,
    *,
    now: datetime.datetime,
    rehash: tuple[str, int] | None = None,
    previous_secret: bool = False,
    using: str = DEFAULT_DB_ALIAS,
) -> bool:
    """Add one use to the key in one UPDATE, unless it was revoked or rotated since it was read.

    ``rehash`` is ``(digest, pepper_version)`` to store with the use; ``previous_secret`` says the
    request came with the secret of a rotation grace period, which must still be in its period.
    Return whether the row was updated.
    """
    connection = connections[using]
    sql = _count_use_statement(
        using, connection.vendor, rehash=rehash is not None, rotated=api_key.rotated_at is not None,
        previous=previous_secret,
    )
    params = [_prep("last_used_at", now, connection)]
    if rehash is not None:
        params += [rehash[0], rehash[1]]
    params.append(_prep("id", api_key.pk, connection))
    if api_key.rotated_at is not None:
        params.append(_prep("rotated_at", api_key.rotated_at, connection))
    if previous_secret:
        params.append(_prep("previous_valid_until", now, connection))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount == 1
