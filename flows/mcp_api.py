"""``/api/v1/mcp/``: the request's flows as MCP tools over Streamable HTTP (the official ``mcp`` SDK).

A Django async view in front of the SDK's ``StreamableHTTPSessionManager``, so the door is the
one ``/api/v1/run`` has: DRF's synchronous half (the key's checks and audit, the ``run``
permission, rate limits) on a database thread (``core.dbthreads``), then the JSON-RPC message is
handed to the SDK as an ASGI request, on the event loop. Tool calls run flows the async way
(``flows.mcp_tools``): a call waiting on a model holds a coroutine, not a worker.

**Stateless, one manager per request.** Each POST carries everything (the key, the message) and
is answered in one JSON body (``stateless=True, json_response=True``): any worker process can
answer any request, and no session lives in a process that may be gone by the next call. The
manager's ``run()`` is what its lifespan would enter once per process, but the server runs
uvicorn with lifespan off (``langflow_site/server.py``), gunicorn forks workers after import,
and the test server gives each request an event loop of its own: so each request enters a
manager of its own, which in stateless mode keeps nothing between requests anyway and costs
one task group.

Only API keys open this door (``x-api-key`` or ``Authorization: Bearer``, wired in
``langflow_site/urls.py``), never the browser's session cookie: so a page in a browser (DNS
rebinding, a cross-site form) has no ambient credential to use here, and the SDK's own Host
and Origin checks are left off (Django's ``ALLOWED_HOSTS`` applies).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

import mcp_types as types
from django.conf import settings
from django.http import HttpResponse, JsonResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from mcp_types.jsonrpc import INVALID_PARAMS, INVALID_REQUEST
from rest_framework.response import Response

from core import dbthreads
from core.api import sent_as_rendered
from core.parsers import BodyTooLarge, refuse_declared_oversize
from variables.resolve import from_headers

from . import mcp_tools
from .api import FlowAPIView
from .models import FlowPermission

logger = logging.getLogger("flows.mcp")

#: Where the view leaves the request's ``(user, api_key, variables)`` in the ASGI scope, for the tool
#: handlers (``variables``: the ``X-LANGFLOW-GLOBAL-VAR-*`` headers, as on ``/run``).
PRINCIPAL = "langflow_site.principal"
#: Never handed on to the SDK: it has no use for them, and they should appear nowhere else.
CREDENTIAL_HEADERS = frozenset({"x-api-key", "authorization", "cookie"})

INSTRUCTIONS = ("Each tool runs one of your Langflow flows and answers with its output. Pass the same "
                "session_id to continue a conversation with the flow's chat memory.")


def _principal(ctx) -> tuple[Any, Any, dict[str, str]]:
    return ctx.request.scope[PRINCIPAL]


async def _list_tools(ctx, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    user, api_key, _ = _principal(ctx)
    try:
        tools, cursor = await dbthreads.run(mcp_tools.list_tools, user, api_key, params.cursor if params else None)
    except mcp_tools.BadArguments as error:
        raise MCPError(INVALID_PARAMS, str(error)) from None
    return types.ListToolsResult(tools=[types.Tool.model_validate(tool) for tool in tools], next_cursor=cursor)


async def _call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
    user, api_key, variables = _principal(ctx)
    try:
        texts, is_error = await mcp_tools.call_tool(user, api_key, params.name, params.arguments, variables)
    except mcp_tools.UnknownTool:
        raise MCPError(INVALID_PARAMS, f"Unknown tool: {params.name[:200]}") from None
    except mcp_tools.BadArguments as error:
        # Told to the calling model as the tool's answer, so that it can correct itself.
        texts, is_error = [str(error)], True
    return types.CallToolResult(content=[types.TextContent(text=text) for text in texts], is_error=is_error)


@functools.cache
def mcp_server() -> Server:
    return Server("langflow_site", version="1.0", instructions=INSTRUCTIONS,
                  on_list_tools=_list_tools, on_call_tool=_call_tool)


def _scope(request, principal) -> dict:
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1"))
               for name, value in request.headers.items() if name.lower() not in CREDENTIAL_HEADERS]
    return {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "method": request.method, "scheme": request.scheme, "path": request.path,
        "raw_path": request.path.encode(), "query_string": request.META.get("QUERY_STRING", "").encode("latin-1"),
        "root_path": "", "headers": headers, "client": None, "server": None, PRINCIPAL: principal,
    }


async def serve_mcp(request, body: bytes, principal) -> HttpResponse:
    """Answer one Streamable HTTP request with the SDK, as an ASGI app, and return its answer."""
    manager = StreamableHTTPSessionManager(app=mcp_server(), stateless=True, json_response=True,
                                           max_request_body_size=settings.FLOW_MAX_BODY_BYTES)
    answer: dict[str, Any] = {"status": 500, "headers": [], "body": []}
    delivered = False

    async def receive():
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # no more body; this request ends by being answered (or cancelled)

    async def send(message):
        if message["type"] == "http.response.start":
            answer["status"], answer["headers"] = message["status"], message.get("headers", [])
        elif message["type"] == "http.response.body":
            answer["body"].append(message.get("body", b""))

    async with manager.run():
        await manager.handle_request(_scope(request, principal), receive, send)
    headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in answer["headers"]}
    body = b"".join(answer["body"])
    if answer["status"] >= 400 and not headers.get("content-type", "").startswith("application/json"):
        # A few of the SDK's refusals (a wrong Content-Type...) are plain text: every error of
        # this API is JSON, here a JSON-RPC error without an id, as the SDK's other refusals.
        message = body.decode("utf-8", "replace")[:500] or "Invalid request"
        return JsonResponse({"jsonrpc": "2.0", "id": None, "error": {"code": INVALID_REQUEST, "message": message}},
                            status=answer["status"])
    response = HttpResponse(body, status=answer["status"])
    for name, value in headers.items():
        if name not in ("content-length", "connection", "transfer-encoding"):
            response[name] = value
    return response


class McpRequest(Response):
    """The sync half's answer: admitted, with the body for the SDK."""

    def __init__(self, body: bytes, principal):
        super().__init__(None)
        self.body_bytes = body
        self.principal = principal


class McpView(FlowAPIView):
    """``POST /api/v1/mcp/``: one JSON-RPC message (``initialize``, ``tools/list``, ``tools/call``...).

    A key needs ``run``, and sees and calls only the flows of its scope. ``GET`` (a server-sent
    event stream) and ``DELETE`` (ending a session) answer 405, which the Streamable HTTP
    transport allows a stateless server."""

    key_permissions = {"POST": FlowPermission.RUN}
    parser_classes: list = []

    @classmethod
    def as_view(cls, **initkwargs):
        sync_view = super().as_view(**initkwargs)

        async def view(request, *args, **kwargs):
            admitted = await dbthreads.run(sync_view, request, *args, **kwargs)
            if isinstance(admitted, McpRequest):
                return await serve_mcp(request, admitted.body_bytes, admitted.principal)
            return sent_as_rendered(admitted)

        return functools.update_wrapper(view, sync_view)

    @extend_schema(
        operation_id="mcp", request=OpenApiTypes.OBJECT,
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="The JSON-RPC response."),
                   202: OpenApiResponse(description="A notification or response, accepted."),
                   400: OpenApiResponse(OpenApiTypes.OBJECT, description="Not a valid JSON-RPC message."),
                   404: OpenApiResponse(OpenApiTypes.OBJECT, description="Unknown session."),
                   406: OpenApiResponse(OpenApiTypes.OBJECT, description="The client must accept "
                                                                         "application/json."),
                   415: OpenApiResponse(OpenApiTypes.OBJECT, description="The body must be application/json."),
                   413: OpenApiResponse(OpenApiTypes.OBJECT, description="The body is too large.")},
    )
    def post(self, request):
        limit = settings.FLOW_MAX_BODY_BYTES
        refuse_declared_oversize({"request": request}, limit)
        body = request.body
        if len(body) > limit:
            raise BodyTooLarge(limit)
        return McpRequest(body, (request.user, request.auth, from_headers(request.headers)))
