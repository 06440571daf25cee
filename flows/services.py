"""Operations on flows: store, import, find and run them.

Every function raises ``django.core.exceptions.ValidationError`` for bad input (a form can show
it; the API answers 422), ``django.http.Http404`` for a flow the caller may not see, and
``flows.engine.FlowError`` subclasses (each with a ``status_code``) when a flow cannot run.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Iterable

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404

from .models import Flow, FlowPermission

FLOW_NOT_FOUND = "Flow not found"
EDITABLE_FIELDS = ("name", "description", "endpoint_name", "data")


def _save(flow: Flow) -> Flow:
    """Validate and save; a unique-name race lost to another save reads as the usual error."""
    flow.full_clean(exclude=["owner"])
    try:
        with transaction.atomic():
            flow.save()
    except IntegrityError:
        flow.full_clean(exclude=["owner"])  # names the clash in words
        raise
    return flow


def create_flow(*, owner, name: str, description: str = "", endpoint_name: str | None = None,
                data: dict | None = None, flow_id: uuid.UUID | None = None) -> Flow:
    """Create a flow for ``owner``; raise ValidationError naming every bad field."""
    flow = Flow(owner=owner, name=name, description=description or "", endpoint_name=endpoint_name)
    if data is not None:
        flow.data = data
    if flow_id is not None:
        flow.id = flow_id
    return _save(flow)


def update_flow(flow: Flow, **changes: Any) -> Flow:
    """Change some of ``name``, ``description``, ``endpoint_name``, ``data``; validate; save."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"Not editable: {', '.join(sorted(unknown))}")
    for field, value in changes.items():
        if field == "description":
            value = value or ""
        setattr(flow, field, value)
    return _save(flow)


def upsert_flow(*, user, api_key=None, flow_id: uuid.UUID, fields: dict) -> tuple[Flow, bool]:
    """Replace the caller's flow ``flow_id`` with ``fields``, or create it with that id.

    Returns ``(flow, created)``. An id that belongs to another user is a 404: it can be
    neither replaced nor reused.
    """
    flow = Flow.objects.visible_to(user, api_key, FlowPermission.WRITE).filter(pk=flow_id).first()
    if flow is not None:
        full = {"description": "", "endpoint_name": None, **fields}
        return update_flow(flow, **full), False
    if Flow.objects.filter(pk=flow_id).exists():
        raise Http404(FLOW_NOT_FOUND)
    return create_flow(owner=user, flow_id=flow_id, **fields), True


def delete_flow(flow: Flow) -> None:
    flow.delete()


def get_flow_for_request(*, user, api_key=None, reference: str | uuid.UUID,
                         permission: str = FlowPermission.READ, with_data: bool = True) -> Flow:
    """Return the flow whose id or endpoint name is ``reference`` among those the request may see.

    Raises ``Http404("Flow not found")`` otherwise: another user's flow is indistinguishable
    from a missing one. An id wins over another flow's identical endpoint name. One query;
    ``with_data=False`` leaves the (large) graph out of it.
    """
    queryset = Flow.objects.visible_to(user, api_key, permission).matching_reference(str(reference))
    if not with_data:
        queryset = queryset.defer("data")
    candidates = list(queryset[:2])
    for flow in candidates:
        if str(flow.pk) == str(reference):
            return flow
    if not candidates:
        raise Http404(FLOW_NOT_FOUND)
    return candidates[0]


# --- Import -----------------------------------------------------------------------------------

def _export_entries(payload: Any) -> list:
    if isinstance(payload, (bytes, str)):
        try:
            payload = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            raise ValidationError("The file is not valid JSON.") from None
    if isinstance(payload, dict) and isinstance(payload.get("flows"), list):
        payload = payload["flows"]  # Langflow's {"flows": [...]} shape
    entries = payload if isinstance(payload, list) else [payload]
    if not entries:
        raise ValidationError("The file holds no flow.")
    return entries


def _free_name(wanted: str, taken: set[str], separator_format: str) -> str:
    if wanted not in taken:
        return wanted
    number = 1
    while separator_format.format(wanted, number) in taken:
        number += 1
    return separator_format.format(wanted, number)


def _text_field(entry: dict, field: str, where: str, *, required: bool = False) -> str | None:
    value = entry.get(field)
    if value is None or value == "":
        if required:
            raise ValidationError(f"{where}: '{field}' is required.")
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{where}: '{field}' must be a string.")
    return value


@transaction.atomic
def import_flows(*, user, payload: Any) -> list[Flow]:
    """Store every flow of a Langflow export (one flow, a list, or ``{"flows": [...]}``) for ``user``.

    ``payload`` is the parsed JSON or the file's raw bytes/text. All or nothing: the first
    bad flow raises ValidationError (its message names the flow) and nothing is stored.
    As Langflow does, a taken name becomes "Name (1)", a taken endpoint name "name-1", and
    ids in the file are not reused: every imported flow gets a new id.
    """
    entries = _export_entries(payload)
    mine = Flow.objects.owned_by(user)
    names = set(mine.values_list("name", flat=True))
    endpoints = set(mine.exclude(endpoint_name=None).values_list("endpoint_name", flat=True))
    created = []
    for index, entry in enumerate(entries):
        where = f"Flow {index + 1}"
        if not isinstance(entry, dict):
            raise ValidationError(f"{where}: must be an object.")
        name = _text_field(entry, "name", where, required=True)
        where = f"Flow {name!r}"
        endpoint_name = _text_field(entry, "endpoint_name", where)
        description = _text_field(entry, "description", where) or ""
        name = _free_name(name, names, "{} ({})")
        if endpoint_name:
            endpoint_name = _free_name(endpoint_name, endpoints, "{}-{}")
        try:
            flow = create_flow(owner=user, name=name, description=description,
                               endpoint_name=endpoint_name, data=entry.get("data"))
        except ValidationError as error:
            raise ValidationError(f"{where}: " + "; ".join(_error_lines(error))) from None
        names.add(flow.name)
        if flow.endpoint_name:
            endpoints.add(flow.endpoint_name)
        created.append(flow)
    return created


def _error_lines(error: ValidationError) -> Iterable[str]:
    if hasattr(error, "error_dict"):
        return [f"{field}: {message}" for field, messages in error.message_dict.items() for message in messages]
    return error.messages
