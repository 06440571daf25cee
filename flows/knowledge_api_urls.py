"""Routes of Langflow's knowledge-bases API under /api/v1/knowledge_bases (the list with and without a trailing slash)."""

from django.urls import path

from . import knowledge_api

app_name = "knowledge_api"

urlpatterns = [
    path("", knowledge_api.KnowledgeBaseListView.as_view(), name="knowledge-base-list"),
    path("/", knowledge_api.KnowledgeBaseListView.as_view(), name="knowledge-base-list-slash"),
    path("/<str:kb_name>", knowledge_api.KnowledgeBaseDetailView.as_view(), name="knowledge-base-detail"),
    path("/<str:kb_name>/chunks", knowledge_api.KnowledgeBaseChunksView.as_view(), name="knowledge-base-chunks"),
    path("/<str:kb_name>/ingest", knowledge_api.KnowledgeBaseIngestView.as_view(), name="knowledge-base-ingest"),
]
