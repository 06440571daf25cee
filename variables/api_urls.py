"""Routes of Langflow's variables API under /api/v1/variables (the list with and without a trailing slash)."""

from django.urls import path

from . import api

app_name = "variables_api"

urlpatterns = [
    path("", api.VariableListView.as_view(), name="variable-list"),
    path("<str:variable_id>", api.VariableDetailView.as_view(), name="variable-detail"),
]
