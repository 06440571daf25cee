"""The vector search: the exact scan ranks by cosine similarity in bounded batches, and each
backend this machine offers returns the same ranking as the exact scan."""

import pytest
from django.db import connection

from knowledge import services, vectors
from knowledge.models import Chunk

from .embeddings_stub import vector_of

pytestmark = pytest.mark.django_db


def test_pack_and_unpack_keep_the_numbers_as_float32():
    assert vectors.unpack(vectors.pack([1.0, -2.5, 0.125])) == [1.0, -2.5, 0.125]
    assert len(vectors.pack([0.0] * 10)) == 40


def test_the_exact_scan_ranks_by_cosine_similarity_best_first():
    rows = [(1, vectors.pack([1, 0])), (2, vectors.pack([0.6, 0.8])), (3, vectors.pack([-1, 0])),
            (4, vectors.pack([0, 1]))]
    assert vectors.exact_nearest(rows, [1, 0], 3) == [(1, 1.0), (2, 0.6), (4, 0.0)]


def test_the_exact_scan_keeps_only_k_across_batches(monkeypatch):
    monkeypatch.setattr(vectors, "SCAN_BATCH", 3)
    rows = [(pk, vectors.pack([1.0, float(pk)])) for pk in range(1, 11)]
    found = vectors.exact_nearest(rows, [0.0, 1.0], 2)
    assert [pk for pk, _ in found] == [10, 9]


def test_a_zero_vector_scores_zero_rather_than_failing():
    assert vectors.exact_nearest([(1, vectors.pack([0, 0]))], [1, 0], 1) == [(1, 0.0)]
    assert vectors.exact_nearest([(1, vectors.pack([1, 0]))], [0, 0], 1) == [(1, 0.0)]


def test_ties_come_back_in_insertion_order():
    rows = [(pk, vectors.pack([1, 0])) for pk in (5, 2, 9)]
    assert [pk for pk, _ in vectors.exact_nearest(rows, [1, 0], 3)] == [2, 5, 9]


def _base_with(user, texts):
    base = services.create_knowledge_base(owner_id=user.pk, name="docs")
    services.add_chunks(base.pk, [services.NewChunk(text=text, embedding=vector_of(text)) for text in texts])
    return base


def test_this_databases_backend_ranks_like_the_exact_scan(user):
    base = _base_with(user, ["red apples and green apples", "blue sky", "apples", "sky and sea", "green grass"])
    query = vector_of("green apples")
    method = vectors.backend()
    assert method in (vectors.SQLITE_VEC, vectors.PGVECTOR, vectors.EXACT)
    found = vectors.nearest(base.pk, query, 3)
    exact = vectors.nearest(base.pk, query, 3, method=vectors.EXACT)
    assert [pk for pk, _ in found] == [pk for pk, _ in exact]
    assert [score for _, score in found] == pytest.approx([score for _, score in exact], abs=1e-5)
    assert Chunk.objects.get(pk=found[0][0]).text == "red apples and green apples"


def test_which_backend_serves_here_follows_what_the_database_can_load():
    method = vectors.backend()
    if connection.vendor == "sqlite":
        loadable = hasattr(connection.connection, "enable_load_extension")
        assert method == (vectors.SQLITE_VEC if loadable else vectors.EXACT)
    else:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'")
            assert method == (vectors.PGVECTOR if cursor.fetchone() else vectors.EXACT)


@pytest.mark.skipif(not hasattr(__import__("sqlite3").connect(":memory:"), "enable_load_extension"),
                    reason="this Python's sqlite3 cannot load extensions: sqlite-vec cannot be tried here")
def test_sqlite_vec_ranks_like_the_exact_scan_when_it_loads(user):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    base = _base_with(user, ["red apples", "blue sky", "apples apples"])
    query = vector_of("apples")
    assert vectors.nearest(base.pk, query, 3, method=vectors.SQLITE_VEC) == pytest.approx(
        vectors.nearest(base.pk, query, 3, method=vectors.EXACT))
