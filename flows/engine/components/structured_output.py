"""Structured Output: the model answers JSON objects of the shape the export's output schema
table describes, and the answer is validated before it leaves the node.

The table (``output_schema``) has one row per field: ``name``, ``description``, ``type`` (one
of str, int, float, bool, dict) and ``multiple`` (a list of that type). The model is asked, with
``response_format`` (a JSON schema), for ``{"objects": [...]}``; each object is checked against
the table: a field the model left out or set to null is null, a field of the wrong type is an
error naming the node (502: the model's answer, not the request, is at fault), fields the table
does not list are dropped. The Agent's ``structured_response`` uses the same table.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any

from .. import openai_chat
from ..errors import UpstreamError
from .base import Component, register
from .language_model import LanguageModel

TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "dict": "object"}
MAX_FIELDS = 200
MAX_PROBLEMS_NAMED = 5
_SCHEMA_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


@dataclass(frozen=True)
class SchemaField:
    name: str
    description: str
    type: str  # a key of TYPES
    multiple: bool


def schema_fields(component: Component, field: str = "output_schema") -> list[SchemaField]:
    """The rows of the node's output schema table; a malformed row is a 422 naming the field."""
    rows = component.params.get(field)
    if rows in (None, ""):
        return []
    if isinstance(rows, dict):
        rows = [rows]
    if not isinstance(rows, list):
        raise component.fail(field, "must be a table of fields (name, description, type, multiple)")
    if len(rows) > MAX_FIELDS:
        raise component.fail(field, f"has more than {MAX_FIELDS} fields")
    fields, seen = [], set()
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise component.fail(field, f"row {number} must be an object with name, description, type, multiple")
        name = row.get("name")
        if not isinstance(name, str) or not name.strip():
            raise component.fail(field, f"row {number} needs a name")
        name = name.strip()
        if name in seen:
            raise component.fail(field, f"names the field {name!r} twice")
        seen.add(name)
        kind = row.get("type") or "str"
        if kind not in TYPES:
            raise component.fail(field, f"row {number} ({name!r}) has type {kind!r}; the types are "
                                        f"{', '.join(TYPES)}")
        multiple = row.get("multiple", False)
        if isinstance(multiple, str):
            multiple = multiple.strip().lower() == "true"
        description = row.get("description")
        fields.append(SchemaField(name=name, description=description if isinstance(description, str) else "",
                                  type=kind, multiple=bool(multiple)))
    return fields


def object_schema(fields: list[SchemaField]) -> dict:
    """The JSON schema of one object: every field present, null when unknown."""
    properties = {}
    for field in fields:
        kind: dict[str, Any] = {"type": TYPES[field.type]}
        prop: dict[str, Any] = ({"type": ["array", "null"], "items": kind} if field.multiple
                                else {"type": [kind["type"], "null"]})
        if field.description:
            prop["description"] = field.description
        properties[field.name] = prop
    return {"type": "object", "properties": properties, "required": [field.name for field in fields],
            "additionalProperties": False}


def answer_schema(fields: list[SchemaField]) -> dict:
    """The whole answer: ``{"objects": [...]}``, so that one text may yield several objects."""
    return {"type": "object", "properties": {"objects": {"type": "array", "items": object_schema(fields)}},
            "required": ["objects"], "additionalProperties": False}


def response_format(fields: list[SchemaField], name: str) -> dict:
    # OpenAI's strict mode needs every object closed: a free-form dict field cannot be.
    strict = all(field.type != "dict" for field in fields)
    safe_name = _SCHEMA_NAME_UNSAFE.sub("_", name)[:64] or "OutputModel"
    return {"type": "json_schema", "json_schema": {"name": safe_name, "schema": answer_schema(fields),
                                                   "strict": strict}}


def parse_json_answer(text: str) -> Any:
    """The JSON in a model's answer (bare, or in a ```json fence, or the outermost {...}/[...]);
    raise ValueError."""
    text = text.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("the JSON is nested too deeply") from None
    except ValueError:
        pass
    starts = [index for index in (text.find("{"), text.find("[")) if index >= 0]
    if not starts:
        raise ValueError("no JSON found")
    start = min(starts)
    end = text.rfind("}" if text[start] == "{" else "]")
    if end <= start:
        raise ValueError("no JSON found")
    try:
        return json.loads(text[start:end + 1])
    except RecursionError:
        raise ValueError("the JSON is nested too deeply") from None


def conform(value: Any, fields: list[SchemaField]) -> list[dict]:
    """The answer's objects, checked against the table; raise ValueError naming what is wrong."""
    if isinstance(value, dict) and isinstance(value.get("objects"), list):
        items = value["objects"]
    elif isinstance(value, list):
        items = value
    elif isinstance(value, dict):
        items = [value]
    else:
        raise ValueError("the answer is not a JSON object")
    objects, problems = [], []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            problems.append(f"objects[{index}] is not an object")
            continue
        checked: dict[str, Any] = {}
        for field in fields:
            got = item.get(field.name)
            where = f"objects[{index}].{field.name}"
            if got is None:
                checked[field.name] = None
            elif field.multiple:
                if not isinstance(got, list):
                    problems.append(f"{where} must be a list")
                    continue
                converted = [_typed(element, field.type) for element in got]
                if any(element is _WRONG for element in converted):
                    problems.append(f"{where} must be a list of {field.type}")
                    continue
                checked[field.name] = converted
            else:
                converted = _typed(got, field.type)
                if converted is _WRONG:
                    problems.append(f"{where} must be {_ARTICLE[field.type]}")
                    continue
                checked[field.name] = converted
        objects.append(checked)
    if problems:
        more = len(problems) - MAX_PROBLEMS_NAMED
        raise ValueError("; ".join(problems[:MAX_PROBLEMS_NAMED]) + (f" (and {more} more)" if more > 0 else ""))
    return objects


_WRONG = object()
_ARTICLE = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false", "dict": "an object"}


def _typed(value: Any, kind: str) -> Any:
    if kind == "str":
        return value if isinstance(value, str) else _WRONG
    if kind == "bool":
        return value if isinstance(value, bool) else _WRONG
    if kind == "dict":
        return value if isinstance(value, dict) else _WRONG
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _WRONG
    if kind == "int":
        if isinstance(value, float):
            return int(value) if value.is_integer() else _WRONG
        return value
    return float(value)


def as_data(objects: list[dict]) -> dict:
    """Langflow's Data for the objects: the object itself when there is one, else ``results``."""
    return objects[0] if len(objects) == 1 else {"results": objects}


@register("StructuredOutput")
class StructuredOutput(LanguageModel):
    outputs = {"structured_output": "build_structured_output", "dataframe_output": "build_structured_dataframe"}

    def not_valid(self, problem: str) -> UpstreamError:
        return UpstreamError(f"Node {self.node.id}: the model's answer does not match the output schema: {problem}",
                             node_ids=(self.node.id,))

    async def objects(self) -> list[dict]:
        fields = schema_fields(self)
        if not fields:
            raise self.fail("output_schema", "must list at least one field")
        messages = []
        instructions = self.text("system_prompt")
        if instructions:
            messages.append({"role": "system", "content": instructions})
        messages.append({"role": "user", "content": self.text("input_value")})
        request = replace(self.chat_request(), messages=messages,
                          response_format=response_format(fields, self.text("schema_name") or "OutputModel"))
        try:
            with self.egress_policy():
                reply = await openai_chat.chat(request)
        except openai_chat.ModelCallFailed as error:
            if self.context.budget.expired():
                raise self.context.budget.out_of_time(self.node.id) from None
            raise self.model_call_failed(str(error)) from None
        try:
            return conform(parse_json_answer(reply.content), fields)
        except ValueError as error:
            raise self.not_valid(str(error)) from None

    async def build_structured_output(self) -> dict:
        return as_data(await self.objects())

    async def build_structured_dataframe(self) -> list[dict]:
        return await self.objects()
