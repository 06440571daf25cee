"""Operations on users' knowledge bases: create, find, delete, add chunks, search, list chunks.

Nothing here calls a model: vectors come in already made (``flows.knowledge`` embeds texts
through the OpenAI-compatible ``/embeddings`` API). Limits: a base holds at most
KNOWLEDGE_MAX_CHUNKS chunks and vectors of at most KNOWLEDGE_MAX_DIMENSIONS numbers, all of one
length (``KnowledgeLimit`` / ``BadVectors``); a search returns at most KNOWLEDGE_MAX_TOP_K.
Another user's base is never found: every lookup is by owner and name.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, IntegerField, QuerySet, Sum
from django.db.models.functions import Coalesce, Length

from . import vectors
from .models import Chunk, KnowledgeBase

KNOWLEDGE_BASE_NOT_FOUND = "Knowledge base not found"
# Langflow's rule for a knowledge base's name (its Chroma collection name): 3 to 63 characters,
# letters, digits, "_" and "-", starting and ending with a letter or digit.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{1,61}[A-Za-z0-9]\Z")
MAX_PAGE = 100


class KnowledgeLimit(Exception):
    """Past KNOWLEDGE_MAX_CHUNKS; the message names the setting and is safe to show."""


class BadVectors(ValueError):
    """Vectors of the wrong length, too long, or not finite; the message is safe to show."""


@dataclass(frozen=True)
class NewChunk:
    text: str
    embedding: Sequence[float]
    metadata: dict = field(default_factory=dict)
    content_hash: str = ""


def content_hash(text: str) -> str:
    """Langflow's ``_id`` of a row: the SHA-256 of its identifier text."""
    return hashlib.sha256(text.encode()).hexdigest()


def clean_name(name: str) -> str:
    """Langflow's normalisation (spaces become ``_``), then its rule; raise ValidationError."""
    cleaned = (name or "").strip().replace(" ", "_")
    if not _NAME.match(cleaned):
        raise ValidationError("A knowledge base's name has 3 to 63 letters, digits, '_' or '-', and starts and ends "
                              "with a letter or digit.", code="invalid")
    return cleaned


def with_stats(bases: QuerySet[KnowledgeBase]) -> QuerySet[KnowledgeBase]:
    """Each base with ``chunk_count``, ``characters`` and ``words`` (one query)."""
    return bases.annotate(
        chunk_count=Count("chunks"),
        characters=Coalesce(Sum(Length("chunks__text")), 0, output_field=IntegerField()),
        word_count=Coalesce(Sum("chunks__words"), 0, output_field=IntegerField()),
    )


def owned_knowledge_bases(owner_id) -> QuerySet[KnowledgeBase]:
    return with_stats(KnowledgeBase.objects.filter(owner_id=owner_id)).order_by("name")


def find_knowledge_base(owner_id, name: str) -> KnowledgeBase | None:
    """The owner's base called ``name`` (with its stats), or None."""
    if not isinstance(name, str) or not name:
        return None
    return owned_knowledge_bases(owner_id).filter(name=name.strip()).first()


def create_knowledge_base(*, owner_id, name: str, embedding_model: str = "",
                          embedding_provider: str = "OpenAI") -> KnowledgeBase:
    """A new, empty base; ValidationError for a bad name (code "invalid") or a taken one ("taken")."""
    cleaned = clean_name(name)
    model = (embedding_model or "").strip() or settings.EMBEDDING_MODEL
    if len(model) > 200 or len(embedding_provider or "") > 100:
        raise ValidationError("The embedding model or provider is too long.", code="invalid")
    if KnowledgeBase.objects.filter(owner_id=owner_id, name=cleaned).exists():
        raise ValidationError(f"Knowledge base '{cleaned}' already exists", code="taken")
    try:
        with transaction.atomic():
            return KnowledgeBase.objects.create(owner_id=owner_id, name=cleaned, embedding_model=model,
                                                embedding_provider=(embedding_provider or "OpenAI").strip())
    except IntegrityError:  # created meanwhile by another request
        raise ValidationError(f"Knowledge base '{cleaned}' already exists", code="taken") from None


def delete_knowledge_base(base: KnowledgeBase) -> None:
    """Delete the base and its chunks (one transaction)."""
    with transaction.atomic():
        base.delete()


def existing_hashes(knowledge_base_id, hashes: Iterable[str]) -> set[str]:
    """Which of ``hashes`` the base's chunks have already."""
    wanted = list(dict.fromkeys(hashes))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):  # bounded IN lists
        found.update(Chunk.objects.filter(knowledge_base_id=knowledge_base_id,
                                          content_hash__in=wanted[start:start + 500])
                     .values_list("content_hash", flat=True))
    return found


def _checked_vector(vector: Sequence[float], dimensions: int | None) -> int:
    length = len(vector)
    if not 0 < length <= settings.KNOWLEDGE_MAX_DIMENSIONS:
        raise BadVectors(f"an embedding has {length} numbers; at most KNOWLEDGE_MAX_DIMENSIONS "
                         f"({settings.KNOWLEDGE_MAX_DIMENSIONS}) are kept")
    if dimensions is not None and length != dimensions:
        raise BadVectors(f"an embedding has {length} numbers where this knowledge base's have {dimensions} "
                         "(was it made with another embedding model?)")
    if not all(isinstance(value, (int, float)) and math.isfinite(value) for value in vector):
        raise BadVectors("an embedding holds something other than finite numbers")
    return length


def add_chunks(knowledge_base_id, chunks: Sequence[NewChunk], *, column_config: list | None = None) -> int:
    """Store ``chunks`` in the base, all or none; return how many. Raise KnowledgeLimit past
    KNOWLEDGE_MAX_CHUNKS (counted under the base's row lock, so two ingestions cannot both
    squeeze past it), BadVectors for vectors that do not fit the base, KnowledgeBase.DoesNotExist
    when it was deleted meanwhile."""
    if not chunks:
        return 0
    with transaction.atomic():
        base = KnowledgeBase.objects.select_for_update().get(pk=knowledge_base_id)
        dimensions = base.dimensions
        for chunk in chunks:
            dimensions = _checked_vector(chunk.embedding, dimensions)
        held = Chunk.objects.filter(knowledge_base_id=base.pk).count()
        cap = settings.KNOWLEDGE_MAX_CHUNKS
        if held + len(chunks) > cap:
            raise KnowledgeLimit(f"Knowledge base '{base.name}' holds {held:,} chunks: {len(chunks):,} more would "
                                 f"pass KNOWLEDGE_MAX_CHUNKS ({cap:,})")
        rows = Chunk.objects.bulk_create([
            Chunk(knowledge_base_id=base.pk, text=chunk.text, metadata=chunk.metadata,
                  content_hash=chunk.content_hash or content_hash(chunk.text), words=len(chunk.text.split()),
                  embedding=vectors.pack(chunk.embedding))
            for chunk in chunks
        ], batch_size=500)
        vectors.store_vectors(rows)
        changed = []
        if base.dimensions != dimensions:
            base.dimensions = dimensions
            changed.append("dimensions")
        if column_config and not base.column_config:
            base.column_config = column_config
            changed.append("column_config")
        base.save(update_fields=[*changed, "updated_at"])
    return len(rows)


def search(base: KnowledgeBase, vector: Sequence[float], top_k: int) -> list[tuple[Chunk, float]]:
    """The base's ``top_k`` chunks most similar to ``vector``, best first, with their cosine similarity."""
    if base.dimensions is None:
        return []  # nothing ingested yet
    if len(vector) != base.dimensions:
        raise BadVectors(f"the query's embedding has {len(vector)} numbers where this knowledge base's have "
                         f"{base.dimensions} (was it made with another embedding model?)")
    top_k = max(0, min(int(top_k), settings.KNOWLEDGE_MAX_TOP_K))
    found = vectors.nearest(base.pk, list(vector), top_k)
    rows = Chunk.objects.in_bulk([pk for pk, _ in found])
    return [(rows[pk], score) for pk, score in found if pk in rows]


def first_chunks(base: KnowledgeBase, top_k: int) -> list[Chunk]:
    """The base's first ``top_k`` chunks (a retrieval without a query, as Langflow's)."""
    top_k = max(0, min(int(top_k), settings.KNOWLEDGE_MAX_TOP_K))
    return list(Chunk.objects.filter(knowledge_base=base).order_by("id")[:top_k])


def chunk_page(base: KnowledgeBase, *, page: int, limit: int, text: str = "") -> tuple[list[Chunk], int]:
    """One page of the base's chunks (those containing ``text``, if given) and their total."""
    limit = max(1, min(int(limit), MAX_PAGE))
    chunks = Chunk.objects.filter(knowledge_base=base).order_by("id")
    if text.strip():
        chunks = chunks.filter(text__icontains=text.strip())
    offset = (max(1, int(page)) - 1) * limit
    return list(chunks.defer("embedding")[offset:offset + limit]), chunks.count()
