"""``POST /api/v1/responses``: OpenAI's Responses API, a flow as the model (``flows.openai_responses``).

The same door as ``/api/v1/run`` (``AwaitedRunView``): the key's checks, its ``run``
permission and flow scope, rate limits, use counts and audit; the run awaited on the event
loop. Only the shapes differ: OpenAI's, errors included, so that the official ``openai``
package works unchanged.
"""

from __future__ import annotations

import json
import logging

from django.http import Http404, HttpResponseBase, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from variables.resolve import from_headers

from . import engine, services
from .api import AwaitedRunView, PendingRun
from .models import FlowPermission
from .openai_responses import (
    ResponseShape,
    ResponsesRequestSerializer,
    answer_text,
    new_session,
    session_of,
    stream_events,
)

logger = logging.getLogger("flows.responses_api")


class OpenAIErrorBodySerializer(serializers.Serializer):
    message = serializers.CharField()
    type = serializers.CharField()
    param = serializers.CharField(allow_null=True)
    code = serializers.CharField(allow_null=True)


class OpenAIErrorSerializer(serializers.Serializer):
    error = OpenAIErrorBodySerializer()


def _error_doc(description: str) -> OpenApiResponse:
    return OpenApiResponse(OpenAIErrorSerializer, description=description)


ERRORS = {
    400: _error_doc("Invalid request: `param` names the field."),
    401: _error_doc("Missing or invalid API key (`x-api-key` or `Authorization: Bearer`)."),
    403: _error_doc("The key lacks the `run` permission, or may not be used from this address."),
    404: _error_doc("No flow of yours has this id or endpoint name (`model_not_found`)."),
    413: _error_doc("The body is larger than FLOW_MAX_BODY_BYTES."),
    415: _error_doc("Unsupported media type."),
    422: _error_doc("The flow cannot run (unsupported components, a limit)."),
    429: _error_doc("Rate limited; retry after `Retry-After` seconds."),
    502: _error_doc("The model server failed."),
    503: _error_doc("The database is unavailable."),
}


class ModelNotFound(Http404):
    pass


def openai_error(exc: BaseException, response: Response) -> Response:
    """Rewrite the API's ``{"detail"}`` answer to ``exc`` in OpenAI's shape and statuses:
    ``{"error": {"message", "type", "param", "code"}}``; headers (``Retry-After``) are kept.

    The site's handler answers some refusals made before DRF parsed anything (too many query
    fields, say) with a plain JsonResponse: those are read back and answered as a DRF Response."""
    if not isinstance(response, Response):
        try:
            body = json.loads(response.content)
        except ValueError:
            body = {}
        plain = response
        response = Response(body, status=plain.status_code)
        for header in ("Retry-After", "WWW-Authenticate"):
            if header in plain:
                response[header] = plain[header]
    detail = response.data.get("detail", "") if isinstance(response.data, dict) else ""
    status_code, kind, param, code = response.status_code, "invalid_request_error", None, None
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        status_code, code = status.HTTP_401_UNAUTHORIZED, "invalid_api_key"
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    elif isinstance(exc, exceptions.ValidationError):
        status_code = status.HTTP_400_BAD_REQUEST
        errors = response.data.get("errors") if isinstance(response.data, dict) else None
        if isinstance(errors, dict) and errors:
            param = next(iter(errors))
            codes = exc.get_codes()
            first = codes.get(param) if isinstance(codes, dict) else None
            if isinstance(first, list) and first and isinstance(first[0], str) and first[0] != "invalid":
                code = first[0]
    elif isinstance(exc, ModelNotFound):
        param, code = "model", "model_not_found"
    elif isinstance(exc, exceptions.Throttled) or status_code == status.HTTP_429_TOO_MANY_REQUESTS:
        kind, code = "rate_limit_error", "rate_limit_exceeded"
    elif status_code == status.HTTP_403_FORBIDDEN:
        kind, code = "permission_error", "insufficient_permissions"
    elif status_code >= 500:
        kind, code = "server_error", "upstream_error" if status_code == status.HTTP_502_BAD_GATEWAY else None
    elif isinstance(exc, engine.FlowError):
        code = "flow_cannot_run"
    response.status_code = status_code
    response.data = {"error": {"message": detail, "type": kind, "param": param, "code": code}}
    return response


class PendingResponse(PendingRun):
    def __init__(self, plan: engine.Plan, shape: ResponseShape, stream: bool):
        super().__init__(plan, None)
        self.shape = shape
        self.stream = stream


class ResponsesView(AwaitedRunView):
    """``POST /api/v1/responses``: ``{"model": <flow>, "input": ..., "stream", "previous_response_id"}``."""

    key_permissions = {"POST": FlowPermission.RUN}

    def handle_exception(self, exc):
        return openai_error(exc, super().handle_exception(exc))

    def get_authenticate_header(self, request):
        return 'Bearer realm="api"'

    @extend_schema(
        operation_id="create_response", request=ResponsesRequestSerializer,
        responses={(200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT, description="OpenAI's Response."),
                   (200, "text/event-stream"): OpenApiResponse(OpenApiTypes.STR, description="OpenAI's response "
                                                               "events (`stream: true`)."),
                   **ERRORS},
    )
    def post(self, request):
        body = self.validated(ResponsesRequestSerializer, request.data)
        try:
            flow = self.get_flow(body["model"], FlowPermission.RUN, with_data=False)
        except Http404:
            raise ModelNotFound(f"The model '{body['model']}' does not exist or you do not have access to it: "
                                "name one of your flows by id or endpoint name.") from None
        previous = body.get("previous_response_id")
        conversation = body.get("conversation")
        session_id = conversation or (session_of(previous) if previous else new_session())
        # The text goes to the chat input, as Langflow's Responses API does; a flow without one
        # gets it in its text inputs instead.
        has_chat_input = bool(services.flow_graph(flow).by_role("chat_input"))
        plan = services.plan_run(
            flow=flow, input_value=body["input"], input_type="chat" if has_chat_input else "any", output_type="any",
            session_id=session_id, stream=body["stream"], request_variables=from_headers(request.headers),
        )
        shape = ResponseShape(model=body["model"], session_id=session_id, previous_response_id=previous,
                              conversation=conversation)
        return PendingResponse(plan, shape, body["stream"])

    async def finish_run(self, pending: PendingRun):
        assert isinstance(pending, PendingResponse)
        response: HttpResponseBase
        try:
            if pending.stream:
                events = await services.stream_planned(pending.plan)
                response = _event_stream(stream_events(pending.shape, events))
            else:
                result = await services.run_planned(pending.plan)
                response = Response(pending.shape.response("completed", text=answer_text(result)))
        except Exception as exc:  # noqa: BLE001 - handle_exception answers what it knows, re-raises the rest
            response = self.handle_exception(exc)
        # Any response; rendered by AwaitedRunView.as_view (core.api.sent_as_rendered).
        return self.finalize_response(self.request, response)  # type: ignore[arg-type]


def _event_stream(lines) -> StreamingHttpResponse:
    response = StreamingHttpResponse(lines, content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response
