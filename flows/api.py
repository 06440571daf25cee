"""The flows REST API and Langflow's run endpoints. Views translate HTTP to services and back."""

from __future__ import annotations

import functools
import json
import logging
import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core import dbthreads
from core.api import KeyGrants, sent_as_rendered
from core.openapi import ErrorSerializer
from variables.resolve import from_headers

from . import engine, services
from .models import Flow, FlowPermission
from .parsers import LimitedJSONParser, LimitedMultiPartParser
from .serializers import (
    FlowDeletedSerializer,
    FlowInputSerializer,
    FlowListQuerySerializer,
    FlowSerializer,
    FlowUploadSerializer,
    ProcessResponseSerializer,
    RunRequestSerializer,
    RunResponseSerializer,
    StreamQuerySerializer,
    run_request_fields,
    stream_asked,
)

logger = logging.getLogger("flows.api")

FLOW_ID_REQUIRED = "A flow id is required: POST /api/v1/run/<flow id or endpoint name>."
TOO_LARGE = {413: OpenApiResponse(ErrorSerializer, description="The body is larger than FLOW_MAX_BODY_BYTES.")}
RUN_ERRORS = {
    **TOO_LARGE,
    422: OpenApiResponse(ErrorSerializer, description="Invalid fields, or a flow or request that cannot run "
                                                      "(unsupported components, a cycle, a bad tweak): "
                                                      "`node_ids` names the nodes."),
    502: OpenApiResponse(ErrorSerializer, description="The model server failed; `detail` names the node."),
}


def _drf_validation_error(error: DjangoValidationError) -> exceptions.ValidationError:
    if hasattr(error, "error_dict"):
        return exceptions.ValidationError(error.message_dict)
    return exceptions.ValidationError(error.messages)


SCOPED_KEY_CANNOT_CREATE = "This API key is limited to chosen flows: it cannot create flows."


class ApiKeyGrants(KeyGrants):
    """``core.api.KeyGrants``, and the methods that create flows (``creating_methods``), which a key
    limited to chosen flows may not use. Which flows a request sees is ``Flow.objects.visible_to``'s
    business."""

    def scoped_refusal(self, view, api_key, method, needed):
        if method in view.creating_methods and not api_key.may_create_flows:
            return SCOPED_KEY_CANNOT_CREATE
        return None


class FlowAPIView(APIView):
    """Shared by every flows endpoint: JSON bodies with a size limit, service errors as JSON."""

    parser_classes = [LimitedJSONParser]
    permission_classes = [IsAuthenticated, ApiKeyGrants]
    #: The permission an API key needs for each method (see ApiKeyGrants).
    key_permissions: dict[str, str] = {}
    #: Methods that always create flows.
    creating_methods: frozenset[str] = frozenset()

    def handle_exception(self, exc):
        if isinstance(exc, DjangoValidationError):
            exc = _drf_validation_error(exc)
        if isinstance(exc, engine.FlowError):
            if exc.status_code >= 500:
                logger.warning("Run failed: %s", exc)
            body: dict[str, object] = {"detail": str(exc)}
            if exc.node_ids:
                body["node_ids"] = list(exc.node_ids)
            return Response(body, status=exc.status_code)
        return super().handle_exception(exc)

    def validated(self, serializer_class, data, **kwargs) -> dict:
        serializer = serializer_class(data=data, **kwargs)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def get_flow(self, reference, permission: str, *, with_data: bool = True) -> Flow:
        return services.get_flow_for_request(
            user=self.request.user, api_key=self.request.auth, reference=reference,
            permission=permission, with_data=with_data,
        )


class FlowListView(FlowAPIView):
    """``GET /api/v1/flows/``: a bare list, as langflow-sdk expects; ``POST``: create (201)."""

    key_permissions = {"GET": FlowPermission.READ, "POST": FlowPermission.WRITE}
    creating_methods = frozenset({"POST"})

    @extend_schema(operation_id="list_flows", parameters=[FlowListQuerySerializer],
                   responses={200: FlowSerializer(many=True),
                              422: OpenApiResponse(ErrorSerializer, description="Bad parameters, or flows whose "
                                                   "data add up past FLOW_MAX_ANSWER_BYTES (ask for pages or "
                                                   "header_flows=true).")})
    def get(self, request):
        query = self.validated(FlowListQuerySerializer, request.query_params)
        flows = Flow.objects.visible_to(request.user, request.auth, FlowPermission.READ)
        if query["components_only"] or query.get("folder_id"):
            flows = flows.none()  # no flow here is a component or in a folder
        if query["header_flows"]:
            flows = flows.defer("data")
        if not query["get_all"]:
            start = (query["page"] - 1) * query["size"]
            flows = flows[start:start + query["size"]]
        if not query["header_flows"]:
            services.refuse_oversized_listing(flows)
        return Response(FlowSerializer(flows, many=True, with_data=not query["header_flows"]).data)

    @extend_schema(operation_id="create_flow", request=FlowInputSerializer,
                   responses={201: FlowSerializer, **TOO_LARGE})
    def post(self, request):
        fields = self.validated(FlowInputSerializer, request.data)
        flow = services.create_flow(owner=request.user, **fields)
        return Response(FlowSerializer(flow).data, status=status.HTTP_201_CREATED)


class FlowDetailView(FlowAPIView):
    """``GET|PATCH|PUT|DELETE /api/v1/flows/<id>``; PUT creates the flow when the id is free
    (not with a key limited to chosen flows: to it, that id is "Flow not found")."""

    key_permissions = {"GET": FlowPermission.READ, "PATCH": FlowPermission.WRITE, "PUT": FlowPermission.WRITE,
                       "DELETE": FlowPermission.WRITE}

    def _flow(self, flow_id, permission):
        try:
            uuid.UUID(str(flow_id))
        except ValueError:
            raise exceptions.NotFound(services.FLOW_NOT_FOUND) from None
        return self.get_flow(flow_id, permission)

    @extend_schema(operation_id="get_flow", responses=FlowSerializer)
    def get(self, request, flow_id):
        return Response(FlowSerializer(self._flow(flow_id, FlowPermission.READ)).data)

    @extend_schema(operation_id="update_flow", request=FlowInputSerializer(partial=True),
                   responses={200: FlowSerializer, **TOO_LARGE})
    def patch(self, request, flow_id):
        flow = self._flow(flow_id, FlowPermission.WRITE)
        changes = self.validated(FlowInputSerializer, request.data, partial=True)
        return Response(FlowSerializer(services.update_flow(flow, **changes)).data)

    @extend_schema(operation_id="upsert_flow", request=FlowInputSerializer,
                   responses={200: FlowSerializer, 201: FlowSerializer, **TOO_LARGE})
    def put(self, request, flow_id):
        try:
            flow_uuid = uuid.UUID(str(flow_id))
        except ValueError:
            raise exceptions.ValidationError({"id": ["Must be a UUID."]}) from None
        fields = self.validated(FlowInputSerializer, request.data)
        flow, created = services.upsert_flow(user=request.user, api_key=request.auth, flow_id=flow_uuid,
                                             fields=fields)
        return Response(FlowSerializer(flow).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(operation_id="delete_flow", responses={200: FlowDeletedSerializer})
    def delete(self, request, flow_id):
        services.delete_flow(self._flow(flow_id, FlowPermission.WRITE))
        return Response({"message": "Flow deleted successfully"})


class FlowUploadView(FlowAPIView):
    """``POST /api/v1/flows/upload/``: a Langflow export, as a ``file`` form field or as the JSON body."""

    parser_classes = [LimitedMultiPartParser, LimitedJSONParser]
    key_permissions = {"POST": FlowPermission.WRITE}
    creating_methods = frozenset({"POST"})

    @extend_schema(operation_id="upload_flows",
                   request={"multipart/form-data": FlowUploadSerializer, "application/json": OpenApiTypes.OBJECT},
                   responses={201: FlowSerializer(many=True), **TOO_LARGE})
    def post(self, request):
        upload = request.FILES.get("file") if hasattr(request.data, "getlist") else None
        if upload is not None:
            payload = upload.read()
        elif hasattr(request.data, "getlist"):
            raise exceptions.ValidationError({"file": ["Attach the exported flow as the 'file' field."]})
        else:
            payload = request.data
        flows = services.import_flows(user=request.user, payload=payload)
        return Response(FlowSerializer(flows, many=True).data, status=status.HTTP_201_CREATED)


class FlowIdRequiredView(APIView):
    """``/api/v1/run/`` and ``/api/v1/process/`` without a flow: say what is missing, to anyone."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(request=None,
                   responses={404: OpenApiResponse(ErrorSerializer, description="A flow id is required.")})
    def post(self, request):
        raise Http404(FLOW_ID_REQUIRED)


class PendingRun(Response):
    """The sync half's answer on a run endpoint: the planned run, for the async half to await."""

    def __init__(self, plan: engine.Plan, finish):
        super().__init__(None)
        self.plan = plan
        self.finish = finish  # an async service: plan -> response body, or -> event iterator (stream)


class AwaitedRunView(FlowAPIView):
    """A run endpoint whose run waits on the event loop, holding no thread and no connection.

    DRF does the request's synchronous half (authentication, permissions, throttles, parsing,
    the flow's lookup and the run's plan: a few milliseconds of queries and checks) on a
    database thread (``core.dbthreads``); the handler answers a ``PendingRun``, and
    the run itself, which may wait seconds on a model, is then awaited on the event loop.
    """

    @classmethod
    def as_view(cls, **initkwargs):
        sync_view = super().as_view(**initkwargs)

        async def view(request, *args, **kwargs):
            response = await dbthreads.run(sync_view, request, *args, **kwargs)
            if isinstance(response, PendingRun):
                # DRF's finalize_response set the renderer context, the view among it.
                response = await response.renderer_context["view"].finish_run(response)  # type: ignore[attr-defined]
            return sent_as_rendered(response)

        # DRF's marks (cls, initkwargs, csrf_exempt: SessionAuthentication enforces CSRF) carry over.
        return functools.update_wrapper(view, sync_view)

    async def finish_run(self, pending: PendingRun):
        try:
            outcome = await pending.finish(pending.plan)
        except Exception as exc:  # noqa: BLE001 - handle_exception answers what it knows, re-raises the rest
            response = self.handle_exception(exc)
        else:
            stream = pending.finish is services.stream_planned
            response = event_stream(outcome) if stream else Response(outcome)
        return self.finalize_response(self.request, response)  # rendered by as_view's sent_as_rendered


class RunView(AwaitedRunView):
    """``POST /api/v1/run/<flow id or endpoint name>``, Langflow's run; ``?stream=true`` or
    ``"stream": true`` answer the event stream instead."""

    key_permissions = {"POST": FlowPermission.RUN}

    @extend_schema(
        operation_id="run_flow", request=RunRequestSerializer, parameters=[StreamQuerySerializer],
        responses={(200, "application/json"): RunResponseSerializer,
                   (200, "text/event-stream"): OpenApiResponse(OpenApiTypes.STR, description="JSON events, "
                                                               "each followed by a blank line."),
                   **RUN_ERRORS},
    )
    def post(self, request, flow_ref):
        flow = self.get_flow(flow_ref, FlowPermission.RUN, with_data=False)
        body = run_request_fields(request.data)
        stream = body.pop("stream") or stream_asked(request.query_params)
        plan = services.plan_run(flow=flow, stream=stream, request_variables=from_headers(request.headers), **body)
        return PendingRun(plan, services.stream_planned if stream else services.run_planned)


class ProcessView(AwaitedRunView):
    """``POST /api/v1/process/<flow id>``, the older API: ``{"inputs": {...}, "tweaks": {...}}``."""

    key_permissions = {"POST": FlowPermission.RUN}

    @extend_schema(operation_id="process_flow", request=RunRequestSerializer,
                   responses={200: ProcessResponseSerializer, **RUN_ERRORS})
    def post(self, request, flow_ref):
        flow = self.get_flow(flow_ref, FlowPermission.RUN, with_data=False)
        body = run_request_fields(request.data)
        plan = services.plan_run(
            flow=flow, output_type="any", inputs=body.get("inputs"), tweaks=body.get("tweaks"),
            session_id=body.get("session_id"), input_value=body.get("input_value"),
            request_variables=from_headers(request.headers),
        )
        return PendingRun(plan, services.process_planned)


def event_stream(events: AsyncGenerator[dict, None]) -> StreamingHttpResponse:
    """Langflow's framing: each event one JSON object, followed by a blank line."""

    async def framed():
        async with aclosing(events):
            async for event in events:
                yield json.dumps(event, ensure_ascii=False) + "\n\n"

    response = StreamingHttpResponse(framed(), content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # let proxies pass tokens on as they come
    return response
