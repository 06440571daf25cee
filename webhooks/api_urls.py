"""Langflow's webhook route under /api/v1/, and its runs."""

from django.urls import path

from . import api

app_name = "webhooks_api"

urlpatterns = [
    path("webhook/<str:flow_ref>", api.WebhookView.as_view(), name="webhook"),
    path("webhook/<str:flow_ref>/runs", api.WebhookRunListView.as_view(), name="webhook-runs"),
]
