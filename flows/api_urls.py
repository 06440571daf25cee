"""Routes of the flows API under /api/v1/, spelt as Langflow and its clients spell them."""

from django.urls import path

from . import api, monitor_api

app_name = "flows_api"

urlpatterns = [
    path("run/<str:flow_ref>", api.RunView.as_view(), name="run"),  # the hot path first
    path("run/", api.FlowIdRequiredView.as_view(), name="run-without-flow"),
    path("process/<str:flow_ref>", api.ProcessView.as_view(), name="process"),
    path("process/", api.FlowIdRequiredView.as_view(), name="process-without-flow"),
    path("flows/", api.FlowListView.as_view(), name="flow-list"),
    path("flows/upload/", api.FlowUploadView.as_view(), name="flow-upload"),
    path("flows/<str:flow_id>", api.FlowDetailView.as_view(), name="flow-detail"),
    path("monitor/messages", monitor_api.MessageListView.as_view(), name="monitor-messages"),
    path("monitor/messages/sessions", monitor_api.SessionListView.as_view(), name="monitor-sessions"),
    path("monitor/messages/session/<str:session_id>", monitor_api.SessionDetailView.as_view(),
         name="monitor-session"),
    path("monitor/messages/<str:message_id>", monitor_api.MessageDetailView.as_view(), name="monitor-message"),
]
