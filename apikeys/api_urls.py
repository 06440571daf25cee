"""Routes of the key-management API, mounted at /api/v1/api_key/ (Langflow's paths)."""

from django.urls import path

from . import api

app_name = "apikeys_api"

urlpatterns = [
    path("", api.ApiKeyListCreateView.as_view(), name="list"),
    path("revoke-leaked", api.LeakReportView.as_view(), name="revoke_leaked"),
    path("<uuid:key_id>", api.ApiKeyDetailView.as_view(), name="detail"),
    path("<uuid:key_id>/rotate", api.ApiKeyRotateView.as_view(), name="rotate"),
]
