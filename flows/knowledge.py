"""The engine's ``KnowledgeStore`` (``flows.engine.knowledge``) over the knowledge app: one flow
owner's knowledge bases, for one run; and ``ingest_texts``, the ingestion behind
``POST /api/v1/knowledge_bases/<name>/ingest``.

Database work goes to the database threads (``core.dbthreads``), the exact vector scan with it:
nothing here blocks the event loop.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from django.conf import settings

from core import dbthreads
from knowledge import services
from knowledge.models import Chunk, KnowledgeBase
from knowledge.vectors import unpack

from .engine import embeddings
from .engine.knowledge import Hit, KnowledgeBaseInfo, KnowledgeBaseNotFound, KnowledgeLimitReached, Row
from .engine.limits import text_size


def _info(base: KnowledgeBase) -> KnowledgeBaseInfo:
    return KnowledgeBaseInfo(name=base.name, embedding_model=base.embedding_model, dimensions=base.dimensions,
                             chunks=getattr(base, "chunk_count", 0))


def _hit(chunk: Chunk, score: float | None, include_embeddings: bool) -> Hit:
    return Hit(text=chunk.text, metadata=dict(chunk.metadata or {}), score=score,
               embedding=unpack(chunk.embedding) if include_embeddings else None)


def _search(owner_id, name: str, vector: Sequence[float] | None, top_k: int, include_embeddings: bool,
            max_bytes: int | None) -> list[Hit]:
    base = services.find_knowledge_base(owner_id, name)
    if base is None:
        raise KnowledgeBaseNotFound(not_found(name))
    try:
        found = (services.search(base, vector, top_k) if vector is not None
                 else [(chunk, None) for chunk in services.first_chunks(base, top_k)])
    except services.BadVectors as error:
        raise KnowledgeLimitReached(str(error)) from None
    room = settings.FLOW_MAX_VALUE_BYTES if max_bytes is None else max_bytes
    hits = []
    for chunk, score in found:
        room -= text_size(chunk.text)
        if room < 0:
            break
        hits.append(_hit(chunk, score, include_embeddings))
    return hits


def _known_hashes(owner_id, name: str, hashes: Sequence[str]) -> set[str]:
    base = services.find_knowledge_base(owner_id, name)
    if base is None:
        raise KnowledgeBaseNotFound(not_found(name))
    return services.existing_hashes(base.pk, hashes)


def _add(owner_id, name: str, chunks: list[services.NewChunk], column_config: list | None) -> int:
    base = KnowledgeBase.objects.filter(owner_id=owner_id, name=name).only("pk").first()
    if base is None:
        raise KnowledgeBaseNotFound(not_found(name))
    try:
        return services.add_chunks(base.pk, chunks, column_config=column_config)
    except (services.KnowledgeLimit, services.BadVectors) as error:
        raise KnowledgeLimitReached(str(error)) from None
    except KnowledgeBase.DoesNotExist:
        raise KnowledgeBaseNotFound(not_found(name)) from None


def not_found(name: str) -> str:
    return (f"no knowledge base of yours is called {name!r} (create it with POST /api/v1/knowledge_bases, "
            "then give its name)")


class OwnerKnowledgeStore:
    """The knowledge bases of the user ``owner_id``; nobody else's is ever found."""

    def __init__(self, owner_id):
        self.owner_id = owner_id

    async def find(self, name: str) -> KnowledgeBaseInfo:
        base = await dbthreads.run(services.find_knowledge_base, self.owner_id, name)
        if base is None:
            raise KnowledgeBaseNotFound(not_found(name))
        return _info(base)

    async def search(self, name: str, vector: Sequence[float] | None, top_k: int, *,
                     include_embeddings: bool = False, max_bytes: int | None = None) -> list[Hit]:
        return await dbthreads.run(_search, self.owner_id, name, vector, top_k, include_embeddings, max_bytes)

    async def known_hashes(self, name: str, hashes: Sequence[str]) -> set[str]:
        return await dbthreads.run(_known_hashes, self.owner_id, name, list(hashes))

    async def add(self, name: str, rows: Sequence[Row], vectors: Sequence[Sequence[float]], *,
                  column_config: list | None = None) -> int:
        chunks = [services.NewChunk(text=row.text, embedding=vector, metadata=row.metadata,
                                    content_hash=row.content_hash) for row, vector in zip(rows, vectors, strict=True)]
        return await dbthreads.run(_add, self.owner_id, name, chunks, column_config)


# --- Ingestion through the API ------------------------------------------------------------------

async def ingest_texts(*, owner_id, name: str, texts: Sequence[tuple[str, dict]], api_key: str | None = None) -> int:
    """Embed ``texts`` (``(chunk text, metadata)`` pairs) with the base's model and store them;
    return how many. Raise KnowledgeBaseNotFound, KnowledgeLimitReached (past
    KNOWLEDGE_MAX_CHUNKS, checked before any embedding is paid for, and again when storing),
    or ``embeddings.ModelCallFailed``."""
    store = OwnerKnowledgeStore(owner_id)
    info = await store.find(name)
    cap = settings.KNOWLEDGE_MAX_CHUNKS
    if info.chunks + len(texts) > cap:
        raise KnowledgeLimitReached(f"Knowledge base '{name}' holds {info.chunks:,} chunks: {len(texts):,} more "
                                    f"would pass KNOWLEDGE_MAX_CHUNKS ({cap:,})")
    if not texts:
        return 0
    vectors = await embeddings.embed_texts([text for text, _ in texts], model=info.embedding_model,
                                           api_key=api_key, timeout=settings.OPENAI_TIMEOUT)
    now = datetime.datetime.now(datetime.UTC).isoformat()
    rows = [Row(text=text, content_hash=services.content_hash(text), metadata={**metadata, "ingested_at": now})
            for text, metadata in texts]
    return await store.add(name, rows, vectors)
