"""The flow lookup of every run, compiled once instead of per request (see core.compiled).

Through the ORM, building "the owner's flow with this id or endpoint name" cost about a third of
a whole echo run. Only the owner and reference conditions are SQL; what a key may reach is
``ApiKey.flow_scope`` of the key row already loaded (``ApiKey.reaches_flow``), the answer
``FlowQuerySet.visible_to`` puts in SQL for lists.
"""

from __future__ import annotations

from django.db import models, router

from core.compiled import CompiledSelect, Selection, prepared

from .models import Flow, reference_terms


def _build_owned_flows_matching(connection, *, with_data: bool, by_id: bool, by_endpoint: bool):
    quote = connection.ops.quote_name
    meta = Flow._meta
    fields = tuple(field for field in meta.concrete_fields if with_data or field.name != "data")

    def column(name: str) -> str:
        field = meta.get_field(name)
        assert isinstance(field, models.Field)  # a concrete field, not a reverse relation
        return quote(field.column)

    matches = ([f"{column('id')} = %s"] if by_id else []) + ([f"{column('endpoint_name')} = %s"] if by_endpoint else [])
    rest = f"FROM {quote(meta.db_table)} WHERE {column('owner')} = %s AND ({' OR '.join(matches)}) LIMIT 2"
    return [Selection(Flow, fields, meta.db_table)], rest


_owned_flows_matching = CompiledSelect(_build_owned_flows_matching)


def owned_flows_matching(owner_id, reference: str, *, with_data: bool,
                         using: str | None = None) -> list[Flow]:
    """The owner's flows whose id or endpoint name is ``reference`` (at most one of each).

    A reference that can be neither costs no query.
    """
    flow_id, endpoint_name = reference_terms(reference)
    if flow_id is None and endpoint_name is None:
        return []
    using = using or router.db_for_read(Flow)
    params = [prepared(Flow, "owner", owner_id, using)]
    if flow_id is not None:
        params.append(prepared(Flow, "id", flow_id, using))
    if endpoint_name is not None:
        params.append(endpoint_name)
    rows = _owned_flows_matching.rows(params, using=using, with_data=with_data,
                                      by_id=flow_id is not None, by_endpoint=endpoint_name is not None)
    return [flow for (flow,) in rows]
