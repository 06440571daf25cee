"""Operations on flows: store, import, find and run them.

Every function raises ``django.core.exceptions.ValidationError`` for bad input (a form can show
it; the API answers 422), ``django.http.Http404`` for a flow the caller may not see, and
``flows.engine.FlowError`` subclasses (each with a ``status_code``) when a flow cannot run.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import uuid
from collections.abc import AsyncGenerator, Iterable
from contextlib import aclosing, asynccontextmanager
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Sum, TextField
from django.db.models.functions import Cast, Length
from django.http import Http404

from . import catalog, engine, globalvars, queries
from .engine.limits import LimitExceeded
from .engine.structure import empty_flow_data, load_json
from .filestore import OwnerFileStore
from .knowledge import OwnerKnowledgeStore
from .memory import DatabaseChatMemory
from .models import Flow, FlowPermission, may_use_flows, reference_terms
from .serializers import FlowSerializer

logger = logging.getLogger("flows")

FLOW_NOT_FOUND = "Flow not found"
EDITABLE_FIELDS = ("name", "description", "endpoint_name", "data")


def _compile(data: Any) -> engine.Graph | engine.InvalidGraph:
    """The graph a run of ``data`` will use, or why it cannot run (work in progress may be stored)."""
    try:
        return engine.compile_graph(data)
    except engine.InvalidGraph as error:
        return error


def _save(flow: Flow) -> Flow:
    """Validate and compile, outside any transaction; then save in a short one, so that a large
    graph never holds the database's write lock while it is checked. A unique-name race lost to
    another save reads as the usual error."""
    globalvars.take_secrets(flow)  # before the checks: the compiled graph never holds a literal key
    flow.full_clean(exclude=["owner"])
    compiled = _compile(flow.data)
    try:
        with transaction.atomic():
            globalvars.store_secrets(flow)
            flow.save()
    except IntegrityError:
        flow.full_clean(exclude=["owner"])  # names the clash in words
        raise
    _graphs().put(_graph_key(flow), compiled)  # this process's first run finds it ready
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
        if field == "data" and value is None:
            value = empty_flow_data()
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
    # A key limited to chosen flows creates none: to it, any id outside them is "not found".
    if (api_key is not None and not api_key.may_create_flows) or Flow.objects.filter(pk=flow_id).exists():
        raise Http404(FLOW_NOT_FOUND)
    return create_flow(owner=user, flow_id=flow_id, **fields), True


def delete_flow(flow: Flow) -> None:
    """Delete ``flow`` in one transaction: the receivers of its ``pre_delete`` signal (the API keys
    limited to it, in ``apikeys.signals``) change in the same one."""
    with transaction.atomic():
        flow.delete()


def refuse_oversized_listing(flows) -> None:
    """Refuse a list of flows whose graphs add up to more than FLOW_MAX_ANSWER_BYTES, measured in
    the database (as characters of the stored JSON) before any of it is read: a user's many large
    flows must not make one small request build an answer of hundreds of megabytes."""
    limit = settings.FLOW_MAX_ANSWER_BYTES
    total = flows.aggregate(total=Sum(Length(Cast("data", TextField()))))["total"] or 0
    if total > limit:
        raise LimitExceeded(
            f"These flows' data add up to more than FLOW_MAX_ANSWER_BYTES ({limit:,} bytes): ask for fewer "
            "at a time (?get_all=false&page=1&size=10) or without their data (?header_flows=true)."
        )


def get_flow_for_request(*, user, api_key=None, reference: str | uuid.UUID,
                         permission: str = FlowPermission.READ, with_data: bool = True) -> Flow:
    """Return the flow whose id or endpoint name is ``reference`` among those the request may see.

    Raises ``Http404("Flow not found")`` otherwise: another user's flow is indistinguishable
    from a missing one. An id wins over another flow's identical endpoint name. One query;
    ``with_data=False`` leaves the (large) graph out of it.
    """
    if not may_use_flows(user, api_key, permission):
        raise Http404(FLOW_NOT_FOUND)
    # The same decision as Flow.objects.visible_to, for one flow on the hot path: the owner's
    # flows in SQL (a statement compiled once), then the key's scope from the key row.
    reference = str(reference)
    candidates = [
        flow for flow in queries.owned_flows_matching(user.pk, reference, with_data=with_data)
        if api_key is None or api_key.reaches_flow(flow.pk)
    ]
    if not candidates:
        raise Http404(FLOW_NOT_FOUND)
    # Compared as UUIDs, not as text: "0A1B...", a dashless or a braced id names the same flow,
    # and the databases return the two candidates in no particular order.
    flow_id, _ = reference_terms(reference)
    return next((flow for flow in candidates if flow.pk == flow_id), candidates[0])


# --- Import -----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Refusal:
    """Why one flow of an export cannot run here: ``index``, its place in the export; ``unsupported``,
    the display names of its components this server does not run (empty for another reason)."""

    index: int
    flow_name: str
    unsupported: list[str]
    detail: str


class ImportRefused(ValidationError):
    """Flows of an export that cannot run here; its messages are the API's, ``refusals`` the pages'."""

    def __init__(self, refusals: list[Refusal]):
        super().__init__([f"“{refusal.flow_name}” cannot run here. {refusal.detail}" for refusal in refusals])
        self.refusals = refusals


def export_entries(payload: Any) -> list:
    """The flows of a Langflow export (raw bytes/text or parsed JSON), as a list; ValidationError if none."""
    return _export_entries(payload)


def _export_entries(payload: Any) -> list:
    if isinstance(payload, (bytes, str)):
        try:
            payload = load_json(payload)
        except ValueError as error:
            raise ValidationError(f"The file is not valid JSON: {error}.") from None
    if isinstance(payload, dict) and isinstance(payload.get("flows"), list):
        payload = payload["flows"]  # Langflow's {"flows": [...]} shape
    entries = payload if isinstance(payload, list) else [payload]
    if not entries:
        raise ValidationError("The file holds no flow.")
    return entries


class _FreeNames:
    """Names not taken yet: "Name", else "Name (1)", "Name (2)"... Each one given is taken.

    Numbering for a name goes on from where it stopped, so an import of many flows with one
    name costs one pass over the owner's names, not one per flow."""

    def __init__(self, taken: set[str], numbered: str):
        self.taken = taken
        self.numbered = numbered
        self._next: dict[str, int] = {}

    def take(self, wanted: str) -> str:
        name = wanted
        if name in self.taken:
            number = self._next.get(wanted, 1)
            while (name := self.numbered.format(wanted, number)) in self.taken:
                number += 1
            self._next[wanted] = number + 1
        self.taken.add(name)
        return name


def _text_field(entry: dict, field: str, where: str, *, required: bool = False) -> str | None:
    value = entry.get(field)
    if value is None or value == "":
        if required:
            raise ValidationError(f"{where}: '{field}' is required.")
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{where}: '{field}' must be a string.")
    return value


def import_flows(*, user, payload: Any, runnable_only: bool = False) -> list[Flow]:
    """Store every flow of a Langflow export (one flow, a list, or ``{"flows": [...]}``) for ``user``.

    ``payload`` is the parsed JSON or the file's raw bytes/text. All or nothing: the first
    bad flow raises ValidationError (its message names the flow) and nothing is stored;
    with ``runnable_only``, so does a flow this server could not run (the pages promise that).
    As Langflow does, a taken name becomes "Name (1)", a taken endpoint name "name-1", and
    ids in the file are not reused: every imported flow gets a new id.

    Every flow is validated and compiled first, outside any transaction; then all are written
    in one short transaction, so a large import never holds the database's write lock while it
    is checked. At most FLOW_MAX_IMPORT_FLOWS flows per import.
    """
    entries = _export_entries(payload)
    if len(entries) > settings.FLOW_MAX_IMPORT_FLOWS:
        raise ValidationError(f"The file holds {len(entries):,} flows, more than FLOW_MAX_IMPORT_FLOWS "
                              f"({settings.FLOW_MAX_IMPORT_FLOWS:,}) in one import.")
    names, endpoints = _taken_names(user)
    variable_names = globalvars.variable_names(user.pk)
    prepared: list[tuple[Flow, str, str | None, engine.Graph | engine.InvalidGraph]] = []
    problems: list[Refusal] = []
    for index, entry in enumerate(entries):
        where = f"Flow {index + 1}"
        if not isinstance(entry, dict):
            raise ValidationError(f"{where}: must be an object.")
        wanted = _text_field(entry, "name", where, required=True)
        assert wanted is not None  # required: raised when missing
        where = f"Flow {wanted!r}"
        wanted_endpoint = _text_field(entry, "endpoint_name", where)
        description = _text_field(entry, "description", where) or ""
        flow = Flow(owner=user, name=names.take(wanted), description=description,
                    endpoint_name=endpoints.take(wanted_endpoint) if wanted_endpoint else None)
        if entry.get("data") is not None:
            flow.data = entry["data"]
        globalvars.take_secrets(flow, variable_names)
        try:
            flow.full_clean(exclude=["owner"])
        except ValidationError as error:
            raise ValidationError(f"{where}: " + "; ".join(_error_lines(error))) from None
        compiled = _compile(flow.data)
        if runnable_only and isinstance(compiled, engine.InvalidGraph):
            problems.append(Refusal(index, flow.name, catalog.unsupported_components(flow.data), str(compiled)))
        prepared.append((flow, wanted, wanted_endpoint, compiled))
    if problems:
        raise ImportRefused(problems)
    _write_imported(user, prepared)
    for flow, _, _, compiled in prepared:
        _graphs().put(_graph_key(flow), compiled)
    return [flow for flow, _, _, _ in prepared]


def replace_flow_data(flow: Flow, payload: Any) -> Flow:
    """Give ``flow`` the graph of a new export of one flow (raw bytes/text or parsed JSON), keeping
    its id, name, endpoint name and description, so that its API clients call the new version.

    Raises ValidationError when the file holds no flow or several, ImportRefused when the new
    graph cannot run here (nothing changes then)."""
    entries = _export_entries(payload)
    if len(entries) != 1:
        raise ValidationError(f"The file holds {len(entries):,} flows: replace a flow with an export of one flow.")
    entry = entries[0]
    if not isinstance(entry, dict) or not isinstance(entry.get("data"), dict):
        raise ValidationError("The file holds no flow graph ('data' with nodes and edges).")
    name = entry.get("name")
    name = name if isinstance(name, str) and name else flow.name
    compiled = _compile(entry["data"])
    if isinstance(compiled, engine.InvalidGraph):
        raise ImportRefused([Refusal(0, name, catalog.unsupported_components(entry["data"]), str(compiled))])
    return update_flow(flow, data=entry["data"])


class _NotCached(Exception):
    pass


def _cached_only() -> engine.Graph:
    raise _NotCached


def run_problems(flows: Iterable[Flow], *, batch: int = 50) -> dict[uuid.UUID, str]:
    """Why each of ``flows`` cannot run, by id (the runnable ones left out).

    Compiled graphs are cached per version, so a list shown again compiles nothing and reads no
    graph; the graphs of the others are read ``batch`` at a time (one query each), never one
    query per flow, and compiled into the cache."""
    problems: dict[uuid.UUID, str] = {}
    misses: list[Flow] = []
    for flow in flows:
        try:
            _graphs().get(_graph_key(flow), _cached_only)
        except engine.InvalidGraph as error:
            problems[flow.pk] = str(error)
        except _NotCached:
            misses.append(flow)
    for start in range(0, len(misses), batch):
        chunk = misses[start:start + batch]
        graphs = dict(Flow.objects.filter(pk__in=[flow.pk for flow in chunk]).values_list("pk", "data"))
        for flow in chunk:
            data = graphs.get(flow.pk, flow.data if "data" not in flow.get_deferred_fields() else None)
            try:
                _graphs().get(_graph_key(flow), functools.partial(engine.compile_graph, data))
            except engine.InvalidGraph as error:
                problems[flow.pk] = str(error)
    return problems


def export_flow(flow: Flow) -> dict:
    """The flow as Langflow exports it (and as ``GET /api/v1/flows/<id>`` answers): import it anywhere."""
    return FlowSerializer().to_representation(flow)


def _taken_names(user) -> tuple[_FreeNames, _FreeNames]:
    mine = Flow.objects.owned_by(user)
    names = set(mine.values_list("name", flat=True))
    endpoints = set(mine.exclude(endpoint_name=None).values_list("endpoint_name", flat=True))
    return _FreeNames(names, "{} ({})"), _FreeNames(endpoints, "{}-{}")


@transaction.atomic
def _write_imported(user, prepared: list) -> None:
    """Insert the checked flows: one short transaction (two reads of names, one INSERT per flow).

    A name taken since the flows were checked (by another request) is renamed again, as the
    import would have done had it come first."""
    names, endpoints = _taken_names(user)
    for flow, wanted, wanted_endpoint, _ in prepared:
        if flow.name in names.taken:
            flow.name = names.take(wanted)
        else:
            names.taken.add(flow.name)
        if flow.endpoint_name in endpoints.taken:
            flow.endpoint_name = endpoints.take(wanted_endpoint)
        elif flow.endpoint_name:
            endpoints.taken.add(flow.endpoint_name)
        flow.clean_fields(exclude=["owner", "description", "data"])  # a new name is still a valid one
        globalvars.store_secrets(flow)
        try:
            flow.save(force_insert=True)
        except IntegrityError:
            raise ValidationError(f"Flow {flow.name!r}: another flow took its name meanwhile; import again.") from None


def _error_lines(error: ValidationError) -> Iterable[str]:
    if hasattr(error, "error_dict"):
        return [f"{field}: {message}" for field, messages in error.message_dict.items() for message in messages]
    return error.messages


# --- Running ----------------------------------------------------------------------------------

_graph_cache: engine.GraphCache | None = None


def _graphs() -> engine.GraphCache:
    global _graph_cache
    if _graph_cache is None:
        _graph_cache = engine.GraphCache(size=settings.FLOW_GRAPH_CACHE_SIZE,
                                         max_bytes=settings.FLOW_GRAPH_CACHE_BYTES)
    return _graph_cache


def _graph_key(flow: Flow) -> tuple:
    return flow.pk, flow.updated_at


def flow_graph(flow: Flow) -> engine.Graph:
    """Return the compiled graph of this version of ``flow`` (cached per id and ``updated_at``).

    Raises ``engine.InvalidGraph`` (422) naming the nodes when the flow cannot run. Only a
    cache miss reads ``flow.data`` (one query when it was deferred).
    """
    return _graphs().get(_graph_key(flow), lambda: engine.compile_graph(flow.data))


def run_problem(flow: Flow) -> str | None:
    """Why ``flow`` cannot run (unsupported components, a cycle...), or None when it can."""
    try:
        flow_graph(flow)
    except engine.InvalidGraph as error:
        return str(error)
    return None


def plan_run(*, flow: Flow, input_value: str | None = None, input_type: str = "chat", output_type: str = "chat",
             output_component: str | None = None, tweaks: dict | None = None, inputs: dict | None = None,
             session_id: str | None = None, stream: bool = False,
             request_variables: dict[str, str] | None = None) -> engine.Plan:
    """Check a run of ``flow`` and settle every node's parameters: the synchronous half of a run,
    done beside the request's queries (compiling the graph may read ``flow.data``).

    ``input_value`` feeds the inputs of ``input_type``; ``inputs`` is the older body's dict
    (by node id, display name, "input_value"/"text"/"message", or prompt variable); ``tweaks``
    override node fields. Raises ``engine.FlowError`` subclasses (422) for a request or a flow
    that cannot run. The older ``/api/v1/process`` API plans with ``output_type="any"``.
    Fields that load a global variable get the owner's (``request_variables``, from the run's
    ``X-LANGFLOW-GLOBAL-VAR-*`` headers, first): ``flows.globalvars``.
    """
    request = engine.RunRequest(
        input_value=input_value, input_type=input_type, output_type=output_type,
        output_component=output_component or None, tweaks=dict(tweaks or {}), inputs=dict(inputs or {}),
        session_id=session_id or None, stream=stream,
    )
    plan = engine.plan_run(flow_graph(flow), request, flow_id=str(flow.pk))
    globalvars.fill_variables(plan, owner_id=flow.owner_id, request_variables=request_variables)
    # The run's chat memory: the flow's messages, its session's history (flows.memory).
    plan.context = dataclasses.replace(
        plan.context, memory=DatabaseChatMemory(flow_id=str(flow.pk), session_id=plan.context.session_id))
    # The flow owner's files, which File reads and Save File writes (flows.filestore).
    plan.context = dataclasses.replace(plan.context, files=OwnerFileStore(flow.owner_id))
    # The flow owner's knowledge bases, which Knowledge reads and writes (flows.knowledge).
    plan.context = dataclasses.replace(plan.context, knowledge=OwnerKnowledgeStore(flow.owner_id))
    return plan


async def run_planned(plan: engine.Plan) -> dict:
    """Run and return Langflow's run response (``outputs[0].outputs[i].results.message.text``).

    Raises ``engine.FlowError`` subclasses: 422 for a parameter a component refuses, 502
    (UpstreamError) when the model server fails.
    """
    await engine.check_plan(plan)
    async with _chat_memory_written(plan):
        result = await engine.run_to_end(plan)
    return engine.run_response(result)


async def process_planned(plan: engine.Plan) -> dict:
    """Run for the older ``/api/v1/process`` API: ``{"result": {"text", "outputs"}, "session_id"}``."""
    await engine.check_plan(plan)
    async with _chat_memory_written(plan):
        result = await engine.run_to_end(plan)
    return engine.process_response(result)


@asynccontextmanager
async def _chat_memory_written(plan: engine.Plan):
    """Write the chat messages the run stored when it ends (``DatabaseChatMemory.flush``), also
    when it failed, as Langflow keeps a failed run's question; then a failure to write them is
    logged and the run's own error is the one raised."""
    memory = plan.context.memory
    if not isinstance(memory, DatabaseChatMemory):
        yield
        return
    try:
        yield
    except BaseException:
        try:
            await memory.flush()
        except Exception:
            logger.exception("The chat messages of a failed run of flow %s could not be stored", plan.context.flow_id)
        raise
    await memory.flush()


async def stream_planned(plan: engine.Plan) -> AsyncGenerator[dict, None]:
    """Check the run now (raising like ``run_planned``), then return an async iterator of Langflow events.

    Events are ``{"event": name, "data": {...}}``: ``add_message``, ``token`` (``data.chunk``),
    ``end_vertex``, then ``end`` (``data.result`` is ``run_planned``'s response) or ``error``
    (``data.error``). A failure once streaming has begun can only be told as an ``error`` event.
    """
    await engine.check_plan(plan)
    return _events(plan)


async def _events(plan: engine.Plan) -> AsyncGenerator[dict, None]:
    try:
        async with _chat_memory_written(plan), aclosing(engine.execute(plan)) as events:
            async for name, data in events:
                if name == engine.RESULT:
                    assert isinstance(data, engine.RunResult)  # the last item's, and only its
                    # The end event's framing around the body: {"event": "end", "data": {"result": ...}}
                    yield {"event": "end", "data": {"result": engine.run_response(data, framing=40)}}
                else:
                    yield {"event": name, "data": data}
    except engine.FlowError as error:
        if error.status_code >= 500:
            logger.warning("Streamed run of flow %s failed: %s", plan.context.flow_id, error)
        yield {"event": "error", "data": {"error": str(error), "status_code": error.status_code}}
    except Exception:
        logger.exception("Streamed run of flow %s crashed", plan.context.flow_id)
        yield {"event": "error", "data": {"error": "Internal server error.", "status_code": 500}}
