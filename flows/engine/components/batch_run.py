"""Batch Run: the model answers once per row of a DataFrame, with the node's system message; each
answer is added to its row under ``output_column_name``.

The row's text is its ``column_name`` column, or, when none is named, every column written as
TOML (``[column]`` / ``value = "..."``), as Langflow does. The model is the node's own (its
``model`` choice, ``api_key``...; calls go as Language Model nodes' do: ``language_model``).

Bounded: at most FLOW_MAX_ITERATIONS rows (more is a 422 before any call), a few calls at a
time, each within what is left of the run's time budget, and the answers measured against the
run's value limit as they arrive (the remaining calls are cancelled past it).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

from django.conf import settings

from .. import openai_chat
from ..limits import LimitExceeded, json_size
from ..messages import Message
from .base import register
from .language_model import LanguageModel

# Model calls of one Batch Run node in flight at once.
CONCURRENCY = 4


def row_as_toml(row: dict[str, Any]) -> str:
    """Every column as a TOML table holding its value as a string (Langflow's row format)."""
    return "\n".join(f"[{json.dumps(str(column), ensure_ascii=False)}]\n"
                     f"value = {json.dumps(_cell_text(value), ensure_ascii=False)}\n"
                     for column, value in row.items())


def _cell_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return "" if value is None else str(value)


@register("BatchRunComponent")
class BatchRun(LanguageModel):
    outputs = {"batch_results": "run_batch"}

    def rows(self) -> list[dict[str, Any]]:
        value = self.params.get("df")
        items = value if isinstance(value, list) else [] if value in (None, "") else [value]
        rows = []
        for item in items:
            if isinstance(item, dict):
                inner = item.get("data")
                rows.append(inner if isinstance(inner, dict) else item)
            elif isinstance(item, Message):
                rows.append({"text": item.text})
            elif isinstance(item, str):
                rows.append({"text": item})
            else:
                raise self.fail("df", "must be a DataFrame (rows of columns)")
        limit = settings.FLOW_MAX_ITERATIONS
        if len(rows) > limit:
            raise LimitExceeded(f"Node {self.node.id}: {len(rows):,} rows, more than FLOW_MAX_ITERATIONS "
                                f"({limit:,}) model calls in one Batch Run.", node_ids=(self.node.id,))
        return rows

    def row_texts(self, rows: list[dict[str, Any]]) -> list[str]:
        column = self.text("column_name").strip()
        if not column:
            return [row_as_toml(row) for row in rows]
        texts = []
        for row in rows:
            if column not in row:
                columns = ", ".join(repr(name) for name in list(row)[:20]) or "none"
                raise self.fail("column_name", f"names {column!r}, which a row does not have (its columns: {columns})")
            texts.append(_cell_text(row[column]))
        return texts

    async def run_batch(self) -> list[dict[str, Any]]:
        rows = self.rows()
        texts = self.row_texts(rows)
        if not rows:
            return []
        output_column = self.text("output_column_name").strip() or "model_response"
        system = self.text("system_message")
        metadata = self.boolean("enable_metadata")
        base = self.chat_request()  # checks the provider, the base URL and the time left
        budget = self.context.budget
        room = self.value_room()
        used = json_size(rows) + len(rows) * (json_size(output_column) + 4)
        if used > room:
            raise self.too_large()
        answers: list[str | None] = [None] * len(rows)
        gate = asyncio.Semaphore(CONCURRENCY)

        async def answer(index: int) -> None:
            nonlocal used
            async with gate:
                if budget.expired():
                    raise budget.out_of_time(self.node.id)
                messages = [{"role": "system", "content": system}] if system else []
                messages.append({"role": "user", "content": texts[index]})
                request = replace(base, messages=messages, timeout=min(base.timeout, budget.remaining()))
                with self.egress_policy():
                    text = await openai_chat.complete(request)
            used += json_size(text) + (json_size(texts[index]) + 80 if metadata else 0)
            if used > room:
                raise self.too_large()
            answers[index] = text

        calls = [asyncio.ensure_future(answer(index)) for index in range(len(rows))]
        try:
            await asyncio.gather(*calls)  # the first failure is raised; the other calls are cancelled
        except openai_chat.ModelCallFailed as error:
            if budget.expired():
                raise budget.out_of_time(self.node.id) from None
            raise self.model_call_failed(str(error)) from None
        finally:
            for call in calls:
                call.cancel()
            await asyncio.gather(*calls, return_exceptions=True)
        results = []
        for row, text, answer_text in zip(rows, texts, answers, strict=True):
            result = {**row, output_column: answer_text}
            if metadata:
                result["metadata"] = {"has_system_message": bool(system), "input_text": text,
                                      "response_processed": True}
            results.append(result)
        return results
