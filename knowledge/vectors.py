"""The chunks of a knowledge base nearest to a query vector, by cosine similarity, on whatever the
database offers: sqlite-vec on SQLite when the extension loads, pgvector on PostgreSQL when the
extension exists (its column is added by migration 0002), else an exact scan here with numpy.

All three are exact (no approximate index): a base holds at most KNOWLEDGE_MAX_CHUNKS chunks, so
a scan is bounded. The scan here reads the base's vectors a batch at a time and keeps only the
best ``k``, so its memory is one batch whatever the base's size. Vectors are stored as float32,
little-endian (``pack``), the layout sqlite-vec reads as is.
"""

from __future__ import annotations

import logging
import math
from array import array
from collections.abc import Iterable
from itertools import islice

import numpy as np
from django.db import connections
from django.db.backends.signals import connection_created
from django.db.models import F, FloatField, Func, Value
from django.db.models.expressions import RawSQL
from django.dispatch import receiver

from .models import Chunk

logger = logging.getLogger("knowledge.vectors")

SQLITE_VEC, PGVECTOR, EXACT = "sqlite-vec", "pgvector", "exact"
SCAN_BATCH = 1000
PGVECTOR_COLUMN = "embedding_vector"
_pgvector_columns: dict[str, bool] = {}


def pack(vector: Iterable[float]) -> bytes:
    """The vector as stored: float32, little-endian."""
    packed = array("f", vector)
    if packed.itemsize != 4:  # pragma: no cover - every platform Django runs on has 4-byte floats
        raise RuntimeError("float is not 4 bytes here")
    if np.little_endian:
        return packed.tobytes()
    packed.byteswap()  # pragma: no cover
    return packed.tobytes()  # pragma: no cover


def unpack(blob: bytes | memoryview) -> list[float]:
    return np.frombuffer(bytes(blob), dtype="<f4").astype(float).tolist()


def pgvector_text(vector: Iterable[float]) -> str:
    """pgvector's text form, ``[0.1,0.2]``."""
    return "[" + ",".join(repr(float(value)) for value in vector) + "]"


@receiver(connection_created)
def load_sqlite_vec(sender, connection, **kwargs):
    """Load sqlite-vec into each new SQLite connection, when this Python's sqlite3 may load
    extensions (many builds may not: then the exact scan serves)."""
    if connection.vendor != "sqlite":
        return
    raw = connection.connection
    if not hasattr(raw, "enable_load_extension"):
        return
    try:
        import sqlite_vec

        raw.enable_load_extension(True)
        try:
            sqlite_vec.load(raw)
        finally:
            raw.enable_load_extension(False)
    except Exception:  # noqa: BLE001 - a missing or refused extension leaves the exact scan
        logger.warning("sqlite-vec could not be loaded: knowledge bases use the exact scan", exc_info=True)
        return
    connection.knowledge_sqlite_vec = True


def _has_pgvector_column(connection) -> bool:
    alias = connection.alias
    if alias not in _pgvector_columns:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM information_schema.columns WHERE table_name = %s AND column_name = %s",
                           [Chunk._meta.db_table, PGVECTOR_COLUMN])
            _pgvector_columns[alias] = cursor.fetchone() is not None
    return _pgvector_columns[alias]


def backend(using: str = "default") -> str:
    """Which search serves this database: SQLITE_VEC, PGVECTOR or EXACT."""
    connection = connections[using]
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        return SQLITE_VEC if getattr(connection, "knowledge_sqlite_vec", False) else EXACT
    if connection.vendor == "postgresql" and _has_pgvector_column(connection):
        return PGVECTOR
    return EXACT


def store_vectors(chunks: list[Chunk], using: str = "default") -> None:
    """After the chunks are inserted: fill pgvector's column, where there is one."""
    if backend(using) != PGVECTOR:
        return
    with connections[using].cursor() as cursor:
        cursor.executemany(f"UPDATE {Chunk._meta.db_table} SET {PGVECTOR_COLUMN} = %s::vector WHERE id = %s",
                           [(pgvector_text(unpack(chunk.embedding)), chunk.pk) for chunk in chunks])


def nearest(knowledge_base_id, vector: list[float], k: int, *, using: str = "default",
            method: str | None = None) -> list[tuple[int, float]]:
    """The ids of the base's ``k`` chunks most similar to ``vector``, with their cosine
    similarity (1 the same direction, -1 the opposite), best first, ties by insertion order."""
    if k <= 0:
        return []
    method = method or backend(using)
    chunks = Chunk.objects.using(using).filter(knowledge_base_id=knowledge_base_id)
    if method == SQLITE_VEC:
        distance = Func(F("embedding"), Value(pack(vector)), function="vec_distance_cosine",
                        output_field=FloatField())
        rows = chunks.annotate(distance=distance).order_by("distance", "id").values_list("id", "distance")[:k]
        return [(pk, _similarity(found)) for pk, found in rows]
    if method == PGVECTOR:
        operator = RawSQL(f"{PGVECTOR_COLUMN} <=> %s::vector", (pgvector_text(vector),), output_field=FloatField())
        rows = chunks.annotate(distance=operator).order_by("distance", "id").values_list("id", "distance")[:k]
        return [(pk, _similarity(found)) for pk, found in rows]
    return exact_nearest(chunks.order_by().values_list("id", "embedding").iterator(chunk_size=SCAN_BATCH), vector, k)


def _batched(rows: Iterable, size: int):
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def _similarity(distance: float | None) -> float:
    if distance is None or not math.isfinite(distance):  # a zero vector has no direction
        return 0.0
    return round(1.0 - distance, 6)


def exact_nearest(rows: Iterable[tuple[int, bytes | memoryview]], vector: list[float], k: int) -> list[tuple[int, float]]:
    """The exact scan: ``rows`` of ``(id, packed vector)``, read a batch at a time."""
    query = np.asarray(vector, dtype=np.float32)
    query_norm = float(np.linalg.norm(query))
    best_ids = np.empty(0, dtype=np.int64)
    best_scores = np.empty(0, dtype=np.float32)
    for batch in _batched(rows, SCAN_BATCH):
        ids = np.fromiter((pk for pk, _ in batch), dtype=np.int64, count=len(batch))
        matrix = np.frombuffer(b"".join(bytes(blob) for _, blob in batch), dtype="<f4").reshape(len(batch), -1)
        norms = np.linalg.norm(matrix, axis=1) * query_norm
        with np.errstate(divide="ignore", invalid="ignore"):
            scores = np.where(norms > 0, (matrix @ query) / norms, 0.0).astype(np.float32)
        best_ids = np.concatenate([best_ids, ids])
        best_scores = np.concatenate([best_scores, scores])
        if len(best_ids) > k:
            keep = np.argpartition(-best_scores, k - 1)[:k]
            best_ids, best_scores = best_ids[keep], best_scores[keep]
    order = np.lexsort((best_ids, -best_scores))[:k]
    return [(int(best_ids[index]), round(float(best_scores[index]), 6)) for index in order]
