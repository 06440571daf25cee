"""Routes of Langflow's knowledge-bases API (the list with and without a trailing slash), under /api/v1/."""

from django.urls import path

from . import knowledge_api

app_name = "knowledge_api"

urlpatterns = [
    path("knowledge_bases", knowledge_api.KnowledgeBaseListView.as_view(), name="knowledge-base-list"),
    path("knowledge_bases/", knowledge_api.KnowledgeBaseListSlashView.as_view(), name="knowledge-base-list-slash"),
    path("knowledge_bases/<str:kb_name>", knowledge_api.KnowledgeBaseDetailView.as_view(), name="knowledge-base-detail"),
    path("knowledge_bases/<str:kb_name>/chunks", knowledge_api.KnowledgeBaseChunksView.as_view(),
         name="knowledge-base-chunks"),
    path("knowledge_bases/<str:kb_name>/ingest", knowledge_api.KnowledgeBaseIngestView.as_view(),
         name="knowledge-base-ingest"),
]
