"""Routes of the flows API under /api/v1/. A trailing slash is optional, as with Langflow."""

from django.urls import re_path

from . import api

app_name = "flows_api"

urlpatterns = [
    re_path(r"^flows/?$", api.FlowListView.as_view(), name="flow-list"),
    re_path(r"^flows/upload/?$", api.FlowUploadView.as_view(), name="flow-upload"),
    re_path(r"^flows/(?P<flow_id>[^/]+)/?$", api.FlowDetailView.as_view(), name="flow-detail"),
    re_path(r"^run/?$", api.flow_id_required, name="run-without-flow"),
    re_path(r"^run/(?P<flow_ref>[^/]+)/?$", api.RunView.as_view(), name="run"),
    re_path(r"^process/?$", api.flow_id_required, name="process-without-flow"),
    re_path(r"^process/(?P<flow_ref>[^/]+)/?$", api.ProcessView.as_view(), name="process"),
]
