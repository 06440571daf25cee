"""``POST /api/v1/webhook/<flow>`` (Langflow's webhook) and ``GET /api/v1/webhook/<flow>/runs``.

The same keys and limits as ``/run`` (flows.api's views and permission classes): the key from
the ``x-api-key`` header, else the query (the header wins); its flow scope, its ``run``
permission (``read`` to list runs), allowed addresses and rate limits; each use counted and
audited by the authentication. With ``LANGFLOW_WEBHOOK_AUTH_ENABLE`` off, a call without a key
runs the flow as its owner, as Langflow does.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from core.openapi import ErrorSerializer
from core.parsers import BodyTooLarge
from flows.api import ApiKeyGrants, AwaitedRunView, FlowAPIView
from flows.models import FlowPermission

from . import services
from .models import WebhookRun

ACCEPTED = {"message": "Task started in the background", "status": "in progress"}
EMPTY_BODY = "Request body is empty. You should provide a JSON payload containing the flow ID."
MAX_PAGE_SIZE = 100


class WebhookCaller(BasePermission):
    """Signed in (a key or a session), unless LANGFLOW_WEBHOOK_AUTH_ENABLE is off."""

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated) or not settings.LANGFLOW_WEBHOOK_AUTH_ENABLE


def read_body(request) -> str:
    """The raw body as text, at most WEBHOOK_MAX_BODY_BYTES (413), whatever its content type."""
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise BodyTooLarge(limit)
    raw = request._request.read(limit + 1)
    if len(raw) > limit:
        raise BodyTooLarge(limit)
    return raw.decode("utf-8", errors="replace")


class WebhookAcceptedSerializer(serializers.Serializer):
    message = serializers.CharField()
    status = serializers.CharField()


class WebhookView(AwaitedRunView):
    """Record the call and queue its run; answer 202 at once (Langflow's body)."""

    permission_classes = [WebhookCaller, ApiKeyGrants]
    key_permissions = {"POST": FlowPermission.RUN}

    @extend_schema(
        operation_id="webhook_run_flow", request={"*/*": OpenApiTypes.BINARY},
        responses={202: WebhookAcceptedSerializer,
                   400: OpenApiResponse(ErrorSerializer, description="An empty body."),
                   413: OpenApiResponse(ErrorSerializer, description="A body above WEBHOOK_MAX_BODY_BYTES."),
                   422: OpenApiResponse(ErrorSerializer, description="The flow cannot run, or has no Webhook "
                                                                     "component.")},
    )
    def post(self, request, flow_ref):
        flow = services.find_webhook_flow(user=request.user, api_key=request.auth, reference=flow_ref)
        body = read_body(request)
        if not body:
            return Response({"detail": EMPTY_BODY}, status=status.HTTP_400_BAD_REQUEST)
        services.receive_webhook(flow=flow, body=body)
        return Response(ACCEPTED, status=status.HTTP_202_ACCEPTED)


class WebhookRunSerializer(serializers.ModelSerializer):
    flow_id = serializers.UUIDField()

    class Meta:
        model = WebhookRun
        fields = ["id", "flow_id", "status", "attempts", "error", "received_at", "started_at", "finished_at",
                  "next_attempt_at"]


class WebhookRunPageSerializer(serializers.Serializer):
    total_count = serializers.IntegerField()
    page = serializers.IntegerField()
    size = serializers.IntegerField()
    runs = WebhookRunSerializer(many=True)


class RunsQuerySerializer(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, max_value=1_000_000, default=1)
    size = serializers.IntegerField(min_value=1, max_value=MAX_PAGE_SIZE, default=50)
    status = serializers.ChoiceField(choices=WebhookRun.Status.choices, required=False)


class WebhookRunListView(FlowAPIView):
    """The flow's webhook runs, newest first, a page at a time: the owner's, or a key's with ``read``."""

    key_permissions = {"GET": FlowPermission.READ}

    @extend_schema(operation_id="list_webhook_runs", parameters=[RunsQuerySerializer],
                   responses={200: WebhookRunPageSerializer})
    def get(self, request, flow_ref):
        query = self.validated(RunsQuerySerializer, request.query_params)
        flow = self.get_flow(flow_ref, FlowPermission.READ, with_data=False)
        runs = services.runs_of(flow)
        if "status" in query:
            runs = runs.filter(status=query["status"])
        start = (query["page"] - 1) * query["size"]
        page = runs[start:start + query["size"]]
        return Response({"total_count": runs.count(), "page": query["page"], "size": query["size"],
                         "runs": WebhookRunSerializer(page, many=True).data})
