"""Knowledge: write rows into, or find chunks in, one of the owner's knowledge bases (``RunContext.knowledge``).

Langflow 1.13's one node for both (``mode``: Ingest or Retrieve); each output follows the mode,
whichever is connected, as Langflow's does.

Retrieve (``retrieve_data``): ``search_query`` is embedded with the base's embedding model and
the ``top_k`` most similar chunks come back as Langflow's DataFrame rows: ``content``,
``_score`` (cosine similarity, higher is closer), the chunk's metadata when
``include_metadata``, its vector as ``_embeddings`` when ``include_embeddings``. Without a
query, the base's first ``top_k`` chunks, unscored. ``metadata_filter`` (a JSON object) keeps
the chunks whose ``source_metadata`` has every key with one of the values, looking at four
times ``top_k`` candidates, as Langflow does. An Agent calls it as its ``retrieve_data`` tool.

Ingest (``build_kb_info``): each row of ``input_df`` (a DataFrame, Data or Message) becomes a
chunk: the ``column_config`` columns marked ``vectorize`` joined are its text (what is
embedded), the other columns its metadata, and the SHA-256 of the ``identifier`` columns its
``_id``; a row whose ``_id`` the base holds already is skipped unless ``allow_duplicates``.
``chunk_size`` is, as in Langflow, how many texts go to the embeddings API at once (capped by
KNOWLEDGE_EMBEDDING_BATCH). ``metadata_json`` is stamped on every chunk as ``source_metadata``.

Unlike Langflow, a malformed ``metadata_filter`` or ``metadata_json`` is refused (422 naming the
node) rather than ignored. A base that does not exist is a 422 naming the node before the run:
create it first (``POST /api/v1/knowledge_bases``).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import uuid
from typing import Any

from django.conf import settings

from .. import embeddings
from ..errors import UpstreamError
from ..knowledge import KnowledgeBaseInfo, KnowledgeBaseNotFound, KnowledgeLimitReached, KnowledgeStore, Row
from ..messages import Message
from .base import Component, register

INGEST, RETRIEVE = "Ingest", "Retrieve"
DEFAULT_COLUMNS = [{"column_name": "text", "vectorize": True, "identifier": True}]


def _flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and value != ""


def _text_of(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str) \
        if isinstance(value, (dict, list)) else str(value)


def matches(metadata: dict, wanted: dict[str, list[str]]) -> bool:
    """Langflow's filter: every key of ``wanted`` in the chunk's ``source_metadata`` with one of its values."""
    raw = metadata.get("source_metadata")
    try:
        stored = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return False
    if not isinstance(stored, dict):
        return False
    for key, values in wanted.items():
        actual = stored.get(key)
        if actual is None:
            return False
        actual_values = {str(item) for item in actual} if isinstance(actual, list) else {str(actual)}
        if not actual_values & set(values):
            return False
    return True


@register("Knowledge")
class Knowledge(Component):
    outputs = {"retrieve_data": "retrieve_data", "dataframe_output": "build_kb_info"}
    # As a tool (Langflow names it after the method): retrieve_data(search_query, mode).
    tool_outputs = {"retrieve_data": "retrieve_data"}
    # Langflow 1.13's fields, which a tweak may set even where an older export lacks one.
    extra_fields = frozenset({"knowledge_base", "mode", "search_query", "top_k", "include_metadata",
                              "include_embeddings", "metadata_filter", "input_df", "column_config", "chunk_size",
                              "api_key", "allow_duplicates", "metadata_json"})

    # -- Parameters ---------------------------------------------------------------------------

    def is_retrieve(self) -> bool:
        mode = self.text("mode", INGEST)
        if "Retrieve" in mode:  # also the emoji-labelled tabs of older exports
            return True
        if "Ingest" in mode:
            return False
        raise self.fail("mode", f"must be {INGEST} or {RETRIEVE}")

    def base_name(self) -> str:
        name = self.text("knowledge_base").strip()
        if not name:
            raise self.fail("knowledge_base", "is required: create a knowledge base (POST /api/v1/knowledge_bases) "
                                              "and give its name here")
        return name

    def store(self) -> KnowledgeStore:
        if self.context.knowledge is None:
            raise self.fail("knowledge_base", "cannot be used: this run has no knowledge bases")
        return self.context.knowledge

    async def base(self) -> tuple[KnowledgeStore, KnowledgeBaseInfo]:
        store, name = self.store(), self.base_name()
        try:
            return store, await store.find(name)
        except KnowledgeBaseNotFound as error:
            raise self.fail("knowledge_base", str(error)) from None

    def json_object(self, field: str) -> dict | None:
        raw = self.params.get(field)
        if isinstance(raw, dict):
            return raw
        text = self.text(field).strip()
        if not text:
            return None
        try:
            decoded = json.loads(text)
        except ValueError:
            raise self.fail(field, "must be a JSON object") from None
        if not isinstance(decoded, dict):
            raise self.fail(field, "must be a JSON object")
        return decoded

    def metadata_filter(self) -> dict[str, list[str]]:
        decoded = self.json_object("metadata_filter") or {}
        return {str(key): [str(item) for item in value] if isinstance(value, list) else [str(value)]
                for key, value in decoded.items()}

    def column_config(self) -> list[dict]:
        config = self.params.get("column_config")
        if config in (None, "", []):
            config = DEFAULT_COLUMNS
        if not isinstance(config, list) or not all(
                isinstance(row, dict) and isinstance(row.get("column_name"), str) and row["column_name"]
                for row in config):
            raise self.fail("column_config", "must be a table of rows with a column_name")
        if not any(_flag(row.get("vectorize")) for row in config):
            raise self.fail("column_config", "marks no column to vectorize")
        return [{"column_name": row["column_name"], "vectorize": _flag(row.get("vectorize")),
                 "identifier": _flag(row.get("identifier"))} for row in config]

    def api_key(self) -> str | None:
        return self.text("api_key").strip() or None

    async def check(self) -> None:
        retrieve = self.is_retrieve()
        await self.base()
        if retrieve:
            self.metadata_filter()
        else:
            self.column_config()
            self.json_object("metadata_json")

    # -- Embeddings ---------------------------------------------------------------------------

    async def embed(self, texts: list[str], info: KnowledgeBaseInfo, batch_size: int | None = None) -> list[list[float]]:
        """A vector per text from the base's model, within OPENAI_TIMEOUT and the run's time left."""
        budget = self.context.budget
        budget.check_time(self.node.id)
        try:
            return await embeddings.embed_texts(texts, model=info.embedding_model, api_key=self.api_key(),
                                                timeout=min(settings.OPENAI_TIMEOUT, budget.remaining()),
                                                batch_size=batch_size)
        except embeddings.ModelCallFailed as error:
            if budget.expired():
                raise budget.out_of_time(self.node.id) from None
            raise UpstreamError(f"Embeddings failed in node {self.node.id}: {error}",
                                node_ids=(self.node.id,)) from None

    # -- Retrieve -----------------------------------------------------------------------------

    async def retrieve_data(self) -> list[dict] | dict:
        if not self.is_retrieve():
            return await self.build_kb_info()
        store, info = await self.base()
        top_k = int(self.number("top_k", 5, minimum=1, maximum=settings.KNOWLEDGE_MAX_TOP_K, integer=True) or 5)
        include_metadata = self.boolean("include_metadata", True)
        include_embeddings = self.boolean("include_embeddings", False)
        wanted = self.metadata_filter()
        query = self.text("search_query").strip()
        vector = (await self.embed([query], info))[0] if query and info.dimensions is not None else None
        limit = min(top_k * 4, settings.KNOWLEDGE_MAX_TOP_K * 4) if wanted else top_k
        try:
            hits = await store.search(info.name, vector, limit, include_embeddings=include_embeddings,
                                      max_bytes=self.value_room())
        except KnowledgeLimitReached as error:
            raise self.fail("search_query", str(error)) from None
        if wanted:
            hits = [hit for hit in hits if matches(hit.metadata, wanted)][:top_k]
        rows = []
        for hit in hits:
            row: dict[str, Any] = {"content": hit.text}
            if query:
                row["_score"] = hit.score
            if include_metadata:
                row.update(hit.metadata)
            if include_embeddings:
                row["_embeddings"] = hit.embedding
            rows.append(row)
        return rows

    # -- Ingest -------------------------------------------------------------------------------

    def records(self) -> list[dict]:
        value = self.params.get("input_df")
        items = value if isinstance(value, list) else [value]
        records = []
        for item in items:
            if item is None or item == "":
                continue
            if isinstance(item, Message):
                records.append({"text": item.text, "sender": item.sender, "sender_name": item.sender_name})
            elif isinstance(item, dict):
                records.append(item)
            elif isinstance(item, str):
                records.append({"text": item})
            else:
                raise self.fail("input_df", "must be a DataFrame, Data or a Message")
        if not records:
            raise self.fail("input_df", "is required in Ingest mode: connect the rows to write")
        return records

    def rows(self, records: list[dict], config: list[dict]) -> list[Row]:
        content_columns = [row["column_name"] for row in config if row["vectorize"]]
        identifier_columns = [row["column_name"] for row in config if row["identifier"]]
        columns = {name for record in records for name in record}
        missing = [name for name in (row["column_name"] for row in config) if name not in columns]
        if missing:
            raise self.fail("column_config", f"names column '{missing[0]}', which the input lacks "
                                             f"(it has: {', '.join(sorted(map(str, columns))[:20])})")
        tag = self.json_object("metadata_json")
        stamp = json.dumps(tag, sort_keys=True) if tag else ""
        allow_duplicates = self.boolean("allow_duplicates", False)
        seen: set[str] = set()
        rows = []
        for record in records:
            text = " ".join(_text_of(record[name]) for name in content_columns if _present(record.get(name)))
            if not text.strip():
                continue  # nothing to embed
            identifier = " ".join(_text_of(record[name]) for name in identifier_columns
                                  if _present(record.get(name))) if identifier_columns else text
            digest = hashlib.sha256(identifier.encode()).hexdigest()
            if not allow_duplicates:
                if digest in seen:
                    continue
                seen.add(digest)
            metadata = {str(name): _text_of(value) for name, value in record.items()
                        if name not in content_columns and _present(value)}
            metadata["_id"] = digest
            if stamp:
                metadata["source_metadata"] = stamp
            rows.append(Row(text=text, content_hash=digest, metadata=metadata))
        return rows

    async def build_kb_info(self) -> dict | list[dict]:
        if self.is_retrieve():
            return await self.retrieve_data()
        store, info = await self.base()
        config = self.column_config()
        records = self.records()
        rows = self.rows(records, config)
        if rows and not self.boolean("allow_duplicates", False):
            known = await store.known_hashes(info.name, [row.content_hash for row in rows])
            rows = [row for row in rows if row.content_hash not in known]
        cap = settings.KNOWLEDGE_MAX_CHUNKS
        if info.chunks + len(rows) > cap:  # before paying for the embeddings
            raise self.fail("input_df", f"has {len(rows):,} new rows: knowledge base '{info.name}' holds "
                                        f"{info.chunks:,} chunks and may hold KNOWLEDGE_MAX_CHUNKS ({cap:,})")
        batch = self.number("chunk_size", None, minimum=1, maximum=10**6, integer=True)
        added = 0
        if rows:
            vectors = await self.embed([row.text for row in rows], info, batch_size=int(batch) if batch else None)
            try:
                added = await store.add(info.name, rows, vectors, column_config=config)
            except KnowledgeLimitReached as error:
                raise self.fail("input_df", str(error)) from None
            except KnowledgeBaseNotFound as error:
                raise self.fail("knowledge_base", str(error)) from None
        vectorized = [row["column_name"] for row in config if row["vectorize"]]
        identifiers = [row["column_name"] for row in config if row["identifier"]]
        columns = sorted({str(name) for record in records for name in record})
        return {
            "kb_id": str(uuid.uuid4()),
            "kb_name": info.name,
            "rows": len(records),
            "chunks_added": added,
            "column_metadata": {
                "total_columns": len(columns), "mapped_columns": len(config),
                "unmapped_columns": len(columns) - len(config),
                "columns": config,
                "summary": {"vectorized_columns": vectorized, "identifier_columns": identifiers},
            },
            "config_columns": len(config),
            "timestamp": datetime.datetime.now(datetime.UTC).isoformat(),
        }
