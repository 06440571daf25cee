"""What the Knowledge component needs from the knowledge bases of the flow's owner.

The engine stores nothing itself: a run is given a ``KnowledgeStore`` on its ``RunContext``
(``flows.knowledge`` implements it over the knowledge app, scoped to the owner of the flow);
a run without one finds no knowledge base. Vectors are made by the component (the embeddings
call, ``engine.embeddings``, counts against the run's budget); the store keeps and compares them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


class KnowledgeError(Exception):
    """``str(error)`` is safe to show (the component adds the node)."""


class KnowledgeBaseNotFound(KnowledgeError):
    """No knowledge base of the owner has that name (another user's is not found either)."""


class KnowledgeLimitReached(KnowledgeError):
    """Past KNOWLEDGE_MAX_CHUNKS, or vectors that do not fit the base."""


@dataclass(frozen=True)
class KnowledgeBaseInfo:
    name: str
    embedding_model: str
    dimensions: int | None  # None until something is ingested
    chunks: int


@dataclass(frozen=True)
class Hit:
    """A chunk found: its text, metadata, score (cosine similarity; None without a query) and vector."""

    text: str
    metadata: dict[str, Any]
    score: float | None = None
    embedding: list[float] | None = None


@dataclass(frozen=True)
class Row:
    """A chunk to add: its text (what was embedded), metadata and Langflow's ``_id`` hash."""

    text: str
    content_hash: str
    metadata: dict[str, Any] = field(default_factory=dict)


class KnowledgeStore(Protocol):
    async def find(self, name: str) -> KnowledgeBaseInfo:
        """The owner's base called ``name``; raise KnowledgeBaseNotFound."""

    async def search(self, name: str, vector: Sequence[float] | None, top_k: int, *,
                     include_embeddings: bool = False, max_bytes: int | None = None) -> list[Hit]:
        """The ``top_k`` chunks most similar to ``vector``, best first (without one: the first
        ``top_k``, unscored). The texts stop before they add up to more than ``max_bytes``."""

    async def known_hashes(self, name: str, hashes: Sequence[str]) -> set[str]:
        """Which of ``hashes`` the base holds already."""

    async def add(self, name: str, rows: Sequence[Row], vectors: Sequence[Sequence[float]], *,
                  column_config: list | None = None) -> int:
        """Store the rows with their vectors, all or none; raise KnowledgeLimitReached."""
