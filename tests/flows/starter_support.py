"""What the tests of Langflow's starter projects share: the exports, the local stand-ins, a model
that plays every agent of a starter, and the reading of a run's answer.

- ``starter_export(name)``: a starter as Langflow exports it (tests/fixtures/langflow/starters/).
- ``scripted``: a ScriptedModelServer as the server's OPENAI_BASE_URL.
- ``StarterModel``: a responder for it that calls the tools a test names (each once per
  conversation, when the request offers it), answers JSON of the asked shape where a schema is
  asked for (StructuredOutput's ``response_format``, an Agent's ``structured_response``), answers
  ``/embeddings`` requests with ``embed()``, and otherwise answers ``Answer <n> to: <the question>``.
- ``saas_database``: an SQLite database listed in SQL_DATABASES, as an operator would.
- ``upload_starter`` / ``chat_texts``: the real API's import and a run's ChatOutput texts.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sqlite3
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from flows.engine.components import REGISTRY
from tests.flows.scripted_model import ScriptedModelServer, calls, final

STARTERS = Path(__file__).resolve().parents[1] / "fixtures" / "langflow" / "starters"


def starter_names() -> list[str]:
    return sorted(path.name for path in STARTERS.glob("*.json"))


def starter_export(name: str) -> dict:
    """A Langflow starter as exported (a fresh copy)."""
    return json.loads((STARTERS / name).read_text())


def starter_nodes(export: dict) -> list[tuple[str, str]]:
    """``(node id, data.type)`` of each component (notes left out)."""
    return [(item["id"], item["data"]["type"]) for item in export["data"]["nodes"]
            if item["data"].get("type") not in (None, "note") and item.get("type") != "noteNode"]


def unsupported_nodes(export: dict) -> list[tuple[str, str]]:
    """The nodes whose type no component of this server is registered for."""
    return [(node_id, kind) for node_id, kind in starter_nodes(export) if kind not in REGISTRY]


@pytest.fixture
def scripted(settings):
    """A scripted OpenAI-compatible model server, the server's default model endpoint."""
    with ScriptedModelServer() as server:
        settings.OPENAI_BASE_URL = server.base_url
        yield server


def upload_starter(api_client, key, name: str) -> str:
    """Import the starter as the UI does (POST /api/v1/flows/upload/ with the file); its id."""
    upload = SimpleUploadedFile(name, (STARTERS / name).read_bytes(), content_type="application/json")
    response = api_client.post("/api/v1/flows/upload/", {"file": upload}, format="multipart", HTTP_X_API_KEY=key)
    assert response.status_code == 201, response.content
    [flow] = response.json()
    return flow["id"]


def chat_texts(response) -> list[str]:
    """The text each ChatOutput of the run gave, in the answer's order."""
    assert response.status_code == 200, response.content
    return [output["results"]["message"]["text"] for output in response.json()["outputs"][0]["outputs"]]


# --- The model ---------------------------------------------------------------------------------------------

DIMENSIONS = 16


def embed(text: str) -> list[float]:
    """A deterministic bag-of-words vector: texts sharing words are close."""
    vector = [0.0] * DIMENSIONS
    for word in re.findall(r"\w+", text.lower()):
        vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % DIMENSIONS] += 1.0
    norm = math.sqrt(sum(value * value for value in vector)) or 1.0
    return [value / norm for value in vector]


_SAMPLES = {"string": "{name} value", "integer": 7, "number": 7.5, "boolean": True}
# An Agent's structured_response lists the fields in its instructions: "- name (type, a list): ..."
_FIELD_LINE = re.compile(r"^- (\w+) \((\w+)(, a list)?\)", re.MULTILINE)
_AGENT_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "dict": "object"}


def _sample(name: str, schema: dict):
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((item for item in kind if item != "null"), "string")
    if kind == "array":
        return [_sample(name, schema.get("items") or {})]
    if kind == "object":
        properties = schema.get("properties") or {}
        return {key: _sample(key, value) for key, value in properties.items()}
    value = _SAMPLES.get(kind, "{name} value")
    return value.format(name=name) if isinstance(value, str) else value


class StarterModel:
    """Plays every model of a starter. ``tool_calls``: tool name -> the arguments to call it with."""

    def __init__(self, tool_calls: dict[str, dict] | None = None):
        self.tool_calls = dict(tool_calls or {})
        self.answers = 0

    def __call__(self, body: dict) -> dict:
        if "messages" not in body and "input" in body:
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            return {"raw": {"object": "list", "model": body.get("model"), "data": [
                {"object": "embedding", "index": index, "embedding": embed(text)} for index, text in enumerate(texts)]}}
        messages = body["messages"]
        offered = {tool["function"]["name"] for tool in body.get("tools") or ()}
        called = {call["function"]["name"] for message in messages if message["role"] == "assistant"
                  for call in message.get("tool_calls") or ()}
        wanted = [(name, arguments) for name, arguments in self.tool_calls.items()
                  if name in offered and name not in called]
        if wanted:
            return calls(*wanted)
        if body.get("response_format"):
            schema = body["response_format"]["json_schema"]["schema"]
            return final(json.dumps(_sample("answer", schema)))
        system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
        if 'Answer with JSON only: {"objects"' in system:
            fields = {name: _sample(name, {"type": _AGENT_TYPES.get(kind, "string")})
                      for name, kind, _many in _FIELD_LINE.findall(system)}
            return final(json.dumps({"objects": [fields]}))
        self.answers += 1
        question = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        return final(f"Answer {self.answers} to: {str(question)[:80]}")


def tool_results(server: ScriptedModelServer) -> dict[str, list[str]]:
    """What each tool answered, by tool name, as the model was told."""
    names: dict[str, str] = {}
    results: dict[str, list[str]] = {}
    for body in server.requests:
        for message in body.get("messages") or ():
            for call in message.get("tool_calls") or ():
                names[call["id"]] = call["function"]["name"]
            if message["role"] == "tool":
                content = message["content"]
                name = names.get(message.get("tool_call_id"), "?")
                if content not in results.setdefault(name, []):
                    results[name].append(content)
    return results


# --- Other stand-ins -------------------------------------------------------------------------------------

@pytest.fixture
def saas_database(tmp_path, settings):
    """An SQLite database of plans, the only one listed in SQL_DATABASES."""
    path = tmp_path / "saas.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE plans (name TEXT, price REAL, seats INTEGER)")
        connection.executemany("INSERT INTO plans VALUES (?, ?, ?)",
                               [("starter", 19.0, 3), ("growth", 49.0, 10), ("scale", 199.0, 50)])
    connection.close()
    settings.SQL_DATABASES = {"saas": f"sqlite:///{path}"}
    settings.SQL_TIMEOUT = 5.0
    return path
