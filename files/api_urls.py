"""Routes of Langflow's v2 files API under /api/v2/ (the list with and without a trailing slash)."""

from django.urls import path

from . import api

app_name = "files_api"

urlpatterns = [
    path("files", api.FileListView.as_view(), name="file-list"),
    path("files/", api.FileListSlashView.as_view(), name="file-list-slash"),
    path("files/<str:file_id>", api.FileDetailView.as_view(), name="file-detail"),
]
