"""Langflow's /api/v1/knowledge_bases: create, list, show, delete, ingest, chunks; owners and key permissions."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apikeys.access import KeyAccess
from flows import services as flow_services
from knowledge.models import Chunk, KnowledgeBase
from tests.files.conftest import make_pdf

from .conftest import HANDBOOK, create_base, ingest_text

pytestmark = pytest.mark.django_db


def test_a_base_is_created_listed_shown_and_deleted(api_client, user, key):
    created = create_base(api_client, key, name="Team Handbook")
    assert created.status_code == 201, created.json()
    assert created.json()["dir_name"] == "Team_Handbook"
    assert created.json()["embedding_model"] == "text-embedding-3-small" and created.json()["status"] == "empty"
    listed = api_client.get("/api/v1/knowledge_bases/", HTTP_X_API_KEY=key).json()
    assert [base["dir_name"] for base in listed] == ["Team_Handbook"]
    assert api_client.get("/api/v1/knowledge_bases/Team_Handbook", HTTP_X_API_KEY=key).json()["chunks"] == 0
    deleted = api_client.delete("/api/v1/knowledge_bases/Team_Handbook", HTTP_X_API_KEY=key)
    assert deleted.status_code == 200 and not KnowledgeBase.objects.exists()


def test_a_taken_name_is_409_and_a_bad_one_400(api_client, user, key):
    create_base(api_client, key)
    assert create_base(api_client, key).status_code == 409
    assert create_base(api_client, key, name="x").status_code == 400


def test_ingesting_text_splits_embeds_and_stores_it(api_client, user, key, embedder):
    create_base(api_client, key)
    response = ingest_text(api_client, key, "handbook", HANDBOOK, chunk_size=100, chunk_overlap=0,
                           source_name="handbook.md")
    assert response.status_code == 200, response.json()
    assert response.json()["chunks_created"] == 3 and response.json()["files_processed"] == 1
    texts = list(Chunk.objects.order_by("id").values_list("text", flat=True))
    assert texts[0].startswith("Vacation policy") and texts[2].startswith("Security policy")
    assert embedder.texts == texts
    assert embedder.requests[0]["model"] == "text-embedding-3-small"
    assert embedder.authorizations == ["Bearer embedding-key"]  # EMBEDDING_API_KEY, never the chat key
    chunk = Chunk.objects.order_by("id").first()
    assert chunk.metadata["source"] == "handbook.md" and chunk.metadata["chunk_index"] == 0
    shown = api_client.get("/api/v1/knowledge_bases/handbook", HTTP_X_API_KEY=key).json()
    assert shown["chunks"] == 3 and shown["status"] == "ready" and shown["words"] > 20


def test_ingesting_files_reads_them_as_the_file_component_does(api_client, user, key, embedder):
    create_base(api_client, key)
    files = [SimpleUploadedFile("a.txt", b"plain notes about llamas"),
             SimpleUploadedFile("b.pdf", make_pdf("A PDF page about alpacas"))]
    response = api_client.post("/api/v1/knowledge_bases/handbook/ingest", {"files": files}, format="multipart",
                               HTTP_X_API_KEY=key)
    assert response.status_code == 200, response.json()
    assert response.json()["file_names"] == ["a.txt", "b.pdf"]
    assert set(Chunk.objects.values_list("text", flat=True)) == {"plain notes about llamas",
                                                                 "A PDF page about alpacas"}


def test_chunks_are_paged_and_searched(api_client, user, key, embedder):
    create_base(api_client, key)
    ingest_text(api_client, key, "handbook", HANDBOOK, chunk_size=100, chunk_overlap=0)
    page = api_client.get("/api/v1/knowledge_bases/handbook/chunks?page=2&limit=2", HTTP_X_API_KEY=key).json()
    assert (page["total"], page["total_pages"], len(page["chunks"])) == (3, 2, 1)
    found = api_client.get("/api/v1/knowledge_bases/handbook/chunks?search=EXPENSE", HTTP_X_API_KEY=key).json()
    assert [chunk["content"][:14] for chunk in found["chunks"]] == ["Expense policy"]
    assert "embedding" not in found["chunks"][0]


def test_another_users_base_is_404_everywhere_and_left_alone(api_client, user, key, other_key, embedder):
    create_base(api_client, key)
    for method, url in [("get", "/api/v1/knowledge_bases/handbook"), ("get", "/api/v1/knowledge_bases/handbook/chunks"),
                        ("delete", "/api/v1/knowledge_bases/handbook")]:
        assert getattr(api_client, method)(url, HTTP_X_API_KEY=other_key).status_code == 404
    assert ingest_text(api_client, other_key, "handbook", "intruder").status_code == 404
    assert api_client.get("/api/v1/knowledge_bases", HTTP_X_API_KEY=other_key).json() == []
    assert KnowledgeBase.objects.filter(owner=user).exists() and not Chunk.objects.exists()
    assert embedder.requests == []


def test_a_key_needs_write_to_change_and_read_to_list(api_client, user, make_key):
    _, read_only = make_key(user, access=KeyAccess(permissions=("read",)))
    _, run_only = make_key(user, access=KeyAccess(permissions=("run",)))
    refused = create_base(api_client, read_only)
    assert refused.status_code == 403 and "'write'" in refused.json()["detail"]
    assert api_client.get("/api/v1/knowledge_bases", HTTP_X_API_KEY=read_only).status_code == 200
    assert api_client.get("/api/v1/knowledge_bases", HTTP_X_API_KEY=run_only).status_code == 403


def test_a_key_limited_to_chosen_flows_may_read_but_not_change(api_client, user, make_key):
    flow = flow_services.create_flow(owner=user, name="Some flow")
    _, scoped = make_key(user, access=KeyAccess(all_flows=False, flow_ids=(str(flow.pk),)))
    assert create_base(api_client, scoped).status_code == 403
    assert api_client.get("/api/v1/knowledge_bases", HTTP_X_API_KEY=scoped).status_code == 200


def test_ingestion_past_the_chunk_cap_is_413_before_any_embedding(api_client, user, key, embedder, settings):
    settings.KNOWLEDGE_MAX_CHUNKS = 2
    create_base(api_client, key)
    response = ingest_text(api_client, key, "handbook", HANDBOOK, chunk_size=100, chunk_overlap=0)
    assert response.status_code == 413 and "KNOWLEDGE_MAX_CHUNKS" in response.json()["detail"]
    assert embedder.requests == [] and not Chunk.objects.exists()


@pytest.mark.parametrize("mode", ["500", "short"])
def test_a_failing_embeddings_server_is_502_and_stores_nothing(api_client, user, key, embedder, mode):
    embedder.mode = mode
    create_base(api_client, key)
    response = ingest_text(api_client, key, "handbook", HANDBOOK, chunk_size=100, chunk_overlap=0)
    assert response.status_code == 502 and "boom" not in response.json()["detail"]
    assert not Chunk.objects.exists()


def test_embeddings_go_in_batches_of_at_most_knowledge_embedding_batch(api_client, user, key, embedder, settings):
    settings.KNOWLEDGE_EMBEDDING_BATCH = 2
    create_base(api_client, key)
    assert ingest_text(api_client, key, "handbook", HANDBOOK, chunk_size=100, chunk_overlap=0).status_code == 200
    assert [len(body["input"]) for body in embedder.requests] == [2, 1]


def test_nothing_to_ingest_is_400(api_client, user, key):
    create_base(api_client, key)
    assert ingest_text(api_client, key, "handbook", "").status_code == 400
