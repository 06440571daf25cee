"""Knowledge bases in the database: names, owners, limits, vectors that fit, search."""

import pytest
from django.core.exceptions import ValidationError

from knowledge import services
from knowledge.models import Chunk

from .embeddings_stub import vector_of

pytestmark = pytest.mark.django_db


def chunks(*texts):
    return [services.NewChunk(text=text, embedding=vector_of(text)) for text in texts]


@pytest.mark.parametrize("name", ["ab", "-abc", "abc-", "a" * 64, "bad/name", "", "   ", "../etc"])
def test_a_bad_name_is_refused(user, name):
    with pytest.raises(ValidationError) as error:
        services.create_knowledge_base(owner_id=user.pk, name=name)
    assert error.value.code == "invalid"


def test_spaces_become_underscores_and_the_default_model_is_the_settings(user, settings):
    settings.EMBEDDING_MODEL = "my-embedder"
    base = services.create_knowledge_base(owner_id=user.pk, name=" Team Docs ")
    assert (base.name, base.embedding_model) == ("Team_Docs", "my-embedder")


def test_a_name_is_unique_per_owner_only(user, other_user):
    services.create_knowledge_base(owner_id=user.pk, name="docs")
    with pytest.raises(ValidationError) as error:
        services.create_knowledge_base(owner_id=user.pk, name="docs")
    assert error.value.code == "taken"
    assert services.create_knowledge_base(owner_id=other_user.pk, name="docs").owner_id == other_user.pk


def test_another_users_base_is_never_found(user, other_user):
    services.create_knowledge_base(owner_id=user.pk, name="docs")
    assert services.find_knowledge_base(other_user.pk, "docs") is None
    assert services.find_knowledge_base(user.pk, "docs").name == "docs"


def test_the_first_ingestion_fixes_the_dimension_and_later_vectors_must_match(user):
    base = services.create_knowledge_base(owner_id=user.pk, name="docs")
    assert services.add_chunks(base.pk, chunks("one", "two")) == 2
    base.refresh_from_db()
    assert base.dimensions == len(vector_of("one"))
    with pytest.raises(services.BadVectors, match="another embedding model"):
        services.add_chunks(base.pk, [services.NewChunk(text="x", embedding=[1.0, 2.0])])
    with pytest.raises(services.BadVectors, match="another embedding model"):
        services.search(base, [1.0, 2.0], 3)


def test_a_vector_longer_than_the_cap_or_not_finite_is_refused(user, settings):
    settings.KNOWLEDGE_MAX_DIMENSIONS = 8
    base = services.create_knowledge_base(owner_id=user.pk, name="docs")
    with pytest.raises(services.BadVectors, match="KNOWLEDGE_MAX_DIMENSIONS"):
        services.add_chunks(base.pk, [services.NewChunk(text="x", embedding=[1.0] * 9)])
    with pytest.raises(services.BadVectors, match="finite"):
        services.add_chunks(base.pk, [services.NewChunk(text="x", embedding=[float("nan")] * 4)])
    assert Chunk.objects.count() == 0


def test_a_base_holds_at_most_knowledge_max_chunks_all_or_nothing(user, settings):
    settings.KNOWLEDGE_MAX_CHUNKS = 3
    base = services.create_knowledge_base(owner_id=user.pk, name="docs")
    services.add_chunks(base.pk, chunks("a", "b"))
    with pytest.raises(services.KnowledgeLimit, match="KNOWLEDGE_MAX_CHUNKS"):
        services.add_chunks(base.pk, chunks("c", "d"))
    assert Chunk.objects.filter(knowledge_base=base).count() == 2
    services.add_chunks(base.pk, chunks("c"))
    assert Chunk.objects.filter(knowledge_base=base).count() == 3


def test_search_ranks_the_closest_chunks_first_within_the_top_k_cap(user, settings):
    settings.KNOWLEDGE_MAX_TOP_K = 2
    base = services.create_knowledge_base(owner_id=user.pk, name="docs")
    services.add_chunks(base.pk, chunks("cats purr", "dogs bark loudly", "dogs bark", "fish swim"))
    base.refresh_from_db()
    found = services.search(base, vector_of("dogs bark"), 10)
    assert [chunk.text for chunk, _ in found] == ["dogs bark", "dogs bark loudly"]
    assert found[0][1] == pytest.approx(1.0) and found[0][1] > found[1][1]


def test_deleting_a_base_deletes_its_chunks(user):
    base = services.create_knowledge_base(owner_id=user.pk, name="docs")
    services.add_chunks(base.pk, chunks("a"))
    services.delete_knowledge_base(base)
    assert Chunk.objects.count() == 0


def test_stats_count_chunks_words_and_characters(user):
    base = services.create_knowledge_base(owner_id=user.pk, name="docs")
    services.add_chunks(base.pk, chunks("two words", "three more words"))
    found = services.find_knowledge_base(user.pk, "docs")
    assert (found.chunk_count, found.word_count, found.characters) == (2, 5, 25)
