"""Chat memory in the database: the server's ``engine.memory.ChatMemory``.

A run gets one ``DatabaseChatMemory`` for its flow and session (``services.plan_run``). The
messages its Chat Input and Chat Output store are written together when the run ends
(``flush``), before its answer goes out, so the next request of the conversation reads them;
reads during the run see the earlier runs' messages, not its own (Langflow's Agent leaves the
current input out of its history too). The queries go to the database threads
(``core.dbthreads``): a run waiting on them holds no worker.

The writes are group commits (``_GroupWriter``): the runs of a process that end while a write
is under way are written together in the next one, in one transaction and one prepared INSERT
(``core.compiled``). An idle server writes each run at once; a busy one pays one database
round trip and one write lock for many runs instead of one each, which on SQLite, where
writers queue, is what keeps the other requests' writes (a key's use) quick.

Every read is bounded: a number of messages, and texts adding up to at most
FLOW_MAX_VALUE_BYTES characters (a stored message is never larger than that). A flow keeps at
most FLOW_MAX_MESSAGES messages: its oldest beyond that are deleted, checked by each process at
its first write to the flow and then every PRUNE_EVERY writes (so between two checks a flow
grows by at most PRUNE_EVERY runs' messages per process).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import re
import threading
import uuid
import weakref
from collections import OrderedDict
from typing import Any

from django.conf import settings
from django.db import router, transaction
from django.db.models import F, Q, Subquery, Sum, Window
from django.db.models.functions import Length, Substr
from django.utils import timezone

from core import dbthreads
from core.compiled import CompiledInsert

from .engine.memory import ORDERS
from .engine.messages import Message as EngineMessage
from .models import Message

logger = logging.getLogger("flows.memory")

# Writes to one flow between two checks of its cap, per process; flows whose count is kept.
PRUNE_EVERY = 50
PRUNE_TRACKED_FLOWS = 4096
# Search: the query's first words, the latest messages looked at, and how much of each is read.
SEARCH_TERMS = 16
SEARCH_CANDIDATES = 500
SEARCH_SCAN_CHARS = 20_000
_WORD = re.compile(r"\w+")


def default_properties() -> dict:
    """Langflow's ``Properties`` of a message, as its API shows them."""
    return {"text_color": None, "background_color": None, "edited": False,
            "source": {"id": None, "display_name": None, "source": None}, "icon": None,
            "allow_markdown": False, "positive_feedback": None, "state": "complete", "targets": []}


def langflow_timestamp(moment: datetime.datetime) -> str:
    """``2025-01-31 12:00:00 UTC``, as Langflow writes a message's time."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _message_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except (TypeError, ValueError):
        return uuid.uuid4()


def as_engine_message(row: Message) -> EngineMessage:
    return EngineMessage(text=row.text, sender=row.sender, sender_name=row.sender_name,
                         session_id=row.session_id, flow_id=str(row.flow_id), id=str(row.pk),
                         timestamp=langflow_timestamp(row.timestamp))


class _PruneSchedule:
    """When a process next checks a flow's cap: at its first write to the flow, then every
    PRUNE_EVERY writes. Counts for the PRUNE_TRACKED_FLOWS flows written last (thread-safe)."""

    def __init__(self):
        self._writes: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def is_due(self, flow_id: str) -> bool:
        with self._lock:
            writes = self._writes.pop(flow_id, PRUNE_EVERY)
            due = writes >= PRUNE_EVERY
            self._writes[flow_id] = 1 if due else writes + 1
            if len(self._writes) > PRUNE_TRACKED_FLOWS:
                self._writes.popitem(last=False)
            return due


_prune_schedule = _PruneSchedule()


def prune_flow_messages(flow_id: str) -> int:
    """Delete the flow's messages older than its FLOW_MAX_MESSAGES newest: one statement."""
    cap = settings.FLOW_MAX_MESSAGES
    messages = Message.objects.filter(flow_id=flow_id)
    boundary = messages.order_by("-timestamp").values("timestamp")[cap:cap + 1]
    deleted, _ = messages.filter(timestamp__lte=Subquery(boundary)).delete()
    return deleted


# What every stored message has the same of, prepared once (core.compiled).
_insert_message = CompiledInsert(Message, constants={
    "files": [], "properties": default_properties(), "category": "message", "content_blocks": [],
    "error": False, "edit": False,
})


def store_messages(flow_id: str, messages: list[EngineMessage]) -> None:
    """Insert ``messages`` (each into its conversation ``session_id``) in their order, and check
    the flow's cap when it is due."""
    store_message_batches([(flow_id, messages)])


def store_message_batches(batches: list[tuple[str, list[EngineMessage]]]) -> None:
    """Insert the messages of several runs, ``(flow_id, messages)`` each, in one transaction and
    one prepared INSERT, every message in its order; then check each flow's cap when it is due.

    Each row is the one ``Message(...).save()`` would write (tests hold it to that). Timestamps
    step by a microsecond in the order given, so the order holds whatever the clock's grain.
    """
    now = timezone.now()
    rows: list[dict[str, Any]] = []
    for flow_id, messages in batches:
        for message in messages:
            rows.append({
                "id": _message_id(message.id), "flow_id": flow_id, "session_id": message.session_id,
                "sender": message.sender, "sender_name": message.sender_name, "text": message.text,
                "timestamp": now + datetime.timedelta(microseconds=len(rows)),
            })
    using = router.db_for_write(Message)
    with transaction.atomic(using=using):
        _insert_message.insert_many(rows, using=using)
    for flow_id, _ in batches:
        if _prune_schedule.is_due(flow_id):
            prune_flow_messages(flow_id)


class _GroupWriter:
    """Group commit of the chat messages of one event loop's runs.

    ``write`` queues a run's messages and waits until they are stored. One task writes: it takes
    everything queued, writes it in one job on a database thread, answers those runs, and goes
    again while more was queued meanwhile; so a run waits at most for the write under way and its
    own. When a group fails (a flow deleted during its run makes the whole INSERT fail), each run
    of it is written alone, so one run's failure is its own. A run whose client left still has its
    messages written: the task does not belong to the run.
    """

    def __init__(self) -> None:
        self._queued: list[tuple[str, list[EngineMessage], asyncio.Future]] = []
        self._task: asyncio.Task | None = None

    async def write(self, flow_id: str, messages: list[EngineMessage]) -> None:
        loop = asyncio.get_running_loop()
        stored = loop.create_future()
        self._queued.append((flow_id, messages, stored))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain())
        await stored

    async def _drain(self) -> None:
        group: list = []
        try:
            while self._queued:
                group, self._queued = self._queued, []
                try:
                    await dbthreads.run(store_message_batches, [(flow_id, messages) for flow_id, messages, _ in group])
                except Exception as error:  # noqa: BLE001  (settled below: each run gets its own outcome)
                    if len(group) == 1:
                        _settle(group[0][2], error)
                        continue
                    for flow_id, messages, stored in group:
                        try:
                            await dbthreads.run(store_message_batches, [(flow_id, messages)])
                        except Exception as alone:  # noqa: BLE001
                            _settle(stored, alone)
                        else:
                            _settle(stored, None)
                else:
                    for _, _, stored in group:
                        _settle(stored, None)
                group = []
        finally:  # cancelled (the loop is closing): nobody waits forever
            for _, _, stored in group + self._queued:
                if not stored.done():
                    stored.cancel()


def _settle(future: asyncio.Future, error: BaseException | None) -> None:
    if future.done():  # its run was cancelled meanwhile
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


_writers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _GroupWriter] = weakref.WeakKeyDictionary()


def _group_writer() -> _GroupWriter:
    loop = asyncio.get_running_loop()
    writer = _writers.get(loop)
    if writer is None:
        writer = _writers[loop] = _GroupWriter()
    return writer


def _newest_within(messages, limit: int, max_chars: int):
    """The newest ``limit`` of ``messages`` whose texts, newest first, add up to at most ``max_chars``."""
    newest_first = [F("timestamp").desc(), F("id").desc()]
    return (messages.annotate(running=Window(Sum(Length("text")), order_by=newest_first))
            .filter(running__lte=max_chars).order_by(*newest_first)[:limit])


def session_history(flow_id: str, session_id: str, limit: int, sender: str | None = None,
                    order: str = "Ascending") -> list[EngineMessage]:
    """The latest ``limit`` messages of one conversation (texts within FLOW_MAX_VALUE_BYTES), in ``order``."""
    if limit <= 0:
        return []
    messages = Message.objects.filter(flow_id=flow_id, session_id=session_id)
    if sender:
        messages = messages.filter(sender=sender)
    rows = list(_newest_within(messages, min(limit, settings.FLOW_MAX_MESSAGES), settings.FLOW_MAX_VALUE_BYTES))
    if order == "Ascending":
        rows.reverse()
    return [as_engine_message(row) for row in rows]


def query_terms(query: str) -> list[str]:
    """The distinct words of ``query`` (lower case), the first SEARCH_TERMS of them."""
    terms = dict.fromkeys(word.lower() for word in _WORD.findall(query[:SEARCH_SCAN_CHARS]))
    return list(terms)[:SEARCH_TERMS]


def search_messages(flow_id: str, query: str, limit: int, *, session_id: str | None = None,
                    max_chars: int | None = None) -> list[tuple[EngineMessage, float]]:
    """The messages that share the most words with ``query``, best (then newest) first, with the
    share of the query's words each contains.

    Looks at the latest SEARCH_CANDIDATES messages holding any of the words (of one session,
    or of the whole flow), reading the first SEARCH_SCAN_CHARS characters of each: bounded work
    whatever the history. Words are matched as substrings, case-insensitively.
    """
    terms = query_terms(query)
    if not terms or limit <= 0:
        return []
    messages = Message.objects.filter(flow_id=flow_id)
    if session_id is not None:
        messages = messages.filter(session_id=session_id)
    any_term = Q()
    for term in terms:
        any_term |= Q(text__icontains=term)
    candidates = (messages.filter(any_term).order_by("-timestamp", "-id")
                  .annotate(head=Substr("text", 1, SEARCH_SCAN_CHARS)).values_list("pk", "head")[:SEARCH_CANDIDATES])
    scored = []
    for rank, (pk, head) in enumerate(candidates):
        head = head.lower()
        found = sum(1 for term in terms if term in head)
        if found:
            scored.append((-found, rank, pk))
    scored.sort()
    best = [pk for _, _, pk in scored[:limit]]
    rows = Message.objects.in_bulk(best)
    budget = settings.FLOW_MAX_VALUE_BYTES if max_chars is None else max_chars
    found_messages = []
    for negative_found, _, pk in scored[:limit]:
        row = rows.get(pk)
        if row is None:  # deleted meanwhile
            continue
        budget -= len(row.text)
        if budget < 0:
            break
        found_messages.append((as_engine_message(row), round(-negative_found / len(terms), 4)))
    return found_messages


class DatabaseChatMemory:
    """The chat memory of one run: its flow's messages, its session's history."""

    def __init__(self, *, flow_id: str, session_id: str):
        self.flow_id = flow_id
        self.session_id = session_id
        self.pending: list[EngineMessage] = []  # stored by this run, written by flush()

    async def store(self, message: EngineMessage) -> None:
        self.pending.append(message)

    async def flush(self) -> None:
        """Write the messages this run stored (with other runs' that end meanwhile: ``_GroupWriter``)."""
        if self.pending:
            messages, self.pending = self.pending, []
            await _group_writer().write(self.flow_id, messages)

    async def history(self, limit: int, *, sender: str | None = None,
                      order: str = "Ascending") -> list[EngineMessage]:
        if order not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}")
        return await dbthreads.run(session_history, self.flow_id, self.session_id, int(limit), sender, order)

    async def search(self, query: str, limit: int, *, all_sessions: bool = False,
                     max_bytes: int | None = None) -> list[tuple[EngineMessage, float]]:
        return await dbthreads.run(
            search_messages, self.flow_id, query, int(limit), session_id=None if all_sessions else self.session_id,
            max_chars=max_bytes,
        )
