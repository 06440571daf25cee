"""How the API answers errors: always JSON with ``detail``, Langflow's status codes, never a trace."""

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import (
    BadRequest,
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.db import DataError
from django.http import Http404, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.template.response import SimpleTemplateResponse
from rest_framework import exceptions, status
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .credentials import MISSING_KEY_MESSAGE

logger = logging.getLogger("core.api")

NESTED_TOO_DEEPLY = "The request is nested too deeply."
NOT_UTF8 = "The request is not valid UTF-8 text."
VALUE_OUT_OF_RANGE = "A value in the request is out of range."
BAD_REQUEST = "The request could not be understood."


def sent_as_rendered(response):
    """A DRF ``Response`` rendered and handed back as a plain ``HttpResponse`` (same status,
    headers and body); any other response as it is.

    For the async views that do their sync half on a database thread (``core.dbthreads``):
    Django calls ``render()`` on any response that has one, through a hand-off to a thread and
    back, even when it was rendered already. Rendered here (JSON, on the loop), it goes out as it is.
    """
    if not isinstance(response, SimpleTemplateResponse):
        return response
    if not response.is_rendered:
        response.render()
    return HttpResponse(response.content, status=response.status_code, headers=dict(response.items()))


def _flatten(errors, prefix="") -> list[str]:
    if isinstance(errors, dict):
        lines = []
        for field, value in errors.items():
            name = field if field != "non_field_errors" else ""
            lines += _flatten(value, f"{prefix}{name}: " if name else prefix)
        return lines
    if isinstance(errors, list):
        return [line for item in errors for line in _flatten(item, prefix)]
    return [f"{prefix}{errors}"]


def client_error(exc: BaseException) -> tuple[int, str] | None:
    """Return ``(status, detail)`` when ``exc`` is what Django or Python raise for bad input; else None.

    Shared by the API's exception handler and the site's middleware, so that no client error
    reaches the 500 handler, whichever view or parser it came from. The details are ours: the
    exceptions' own texts name settings and internals.
    """
    if isinstance(exc, RequestDataTooBig):
        return status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, (
            f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."
        )
    if isinstance(exc, TooManyFieldsSent):
        return status.HTTP_400_BAD_REQUEST, (
            f"Too many parameters: at most {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} query or form fields."
        )
    if isinstance(exc, TooManyFilesSent):
        return status.HTTP_400_BAD_REQUEST, f"Too many files: at most {settings.DATA_UPLOAD_MAX_NUMBER_FILES}."
    if isinstance(exc, MultiPartParserError):
        return status.HTTP_400_BAD_REQUEST, "The multipart form could not be read."
    if isinstance(exc, (SuspiciousOperation, BadRequest)):
        return status.HTTP_400_BAD_REQUEST, BAD_REQUEST
    if isinstance(exc, RecursionError):
        return status.HTTP_400_BAD_REQUEST, NESTED_TOO_DEEPLY
    if isinstance(exc, UnicodeError):
        return status.HTTP_400_BAD_REQUEST, NOT_UTF8
    if isinstance(exc, (DataError, OverflowError)):
        # A number or text the database cannot hold (PostgreSQL's class 22, SQLite's 64-bit integers).
        return status.HTTP_422_UNPROCESSABLE_ENTITY, VALUE_OUT_OF_RANGE
    return None


def log_client_error(exc: BaseException, where: str) -> None:
    """One line, no trace: these are the client's mistakes, yet a line shows if a check is missing upstream."""
    logger.warning("Client error in %s: %s", where, type(exc).__name__)


def exception_handler(exc, context):
    """Map every error to ``{"detail": ...}`` with a 4xx status; log (never return) the unexpected.

    Always rendered as JSON, whatever the view renders when it succeeds (the schema's YAML, the
    docs page's HTML) and whatever the client asked for.
    """
    response = _error_response(exc, context)
    request = context.get("request")
    if isinstance(response, Response) and request is not None:
        request.accepted_renderer, request.accepted_media_type = JSONRenderer(), JSONRenderer.media_type
    return response


def _error_response(exc, context):
    if isinstance(exc, exceptions.NotAuthenticated):
        return Response({"detail": MISSING_KEY_MESSAGE}, status=status.HTTP_403_FORBIDDEN)
    if isinstance(exc, exceptions.AuthenticationFailed):
        response = Response({"detail": str(exc.detail)}, status=status.HTTP_403_FORBIDDEN)
        # A refused key is already written to the audit log (lookup id, client IP, reason) and
        # the server's access log; a third "Forbidden" line per guess would only make guessing
        # cost the server more than a valid request does. (Django's private flag: django-stubs leaves it out.)
        response._has_been_logged = True  # type: ignore[attr-defined]
        return response
    if isinstance(exc, exceptions.ValidationError):
        # FastAPI (and so Langflow's clients) use 422 for a well-formed request with bad fields.
        detail = exc.detail
        body: dict[str, Any] = {"detail": "; ".join(_flatten(detail)) or "Invalid input."}
        if isinstance(detail, dict):
            body["errors"] = detail
        return Response(body, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
    if isinstance(exc, Http404):
        message = str(exc) if exc.args and str(exc) else "Not found."
        return Response({"detail": message}, status=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, PermissionDenied):
        return Response({"detail": str(exc) or "Permission denied."}, status=status.HTTP_403_FORBIDDEN)
    known = client_error(exc)
    if known is not None:
        log_client_error(exc, context.get("view").__class__.__name__)
        # Plain JSON, not a DRF Response: raised before content negotiation (too many query
        # parameters), the latter would be rendered by the view's first renderer, YAML for the schema.
        return json_error(known[0], known[1])
    handled = drf_exception_handler(exc, context)
    if handled is not None:
        if isinstance(handled.data, dict) and "detail" in handled.data:
            handled.data = {**handled.data, "detail": str(handled.data["detail"])}
        return handled
    logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
    return Response({"detail": "Internal server error."}, status=status.HTTP_500_INTERNAL_SERVER_ERROR)


def json_error(status_code: int, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail}, status=status_code)


class KeyGrants(BasePermission):
    """An API key may do only what its permissions say; a session may do everything.

    The one place that answers 403 for a missing permission, naming it. Each view says what each
    method needs (``key_permissions``: method -> permission; HEAD counts as GET, a method not
    listed needs none). ``scoped_refusal`` says what a key limited to chosen flows may not do
    beyond that (each API its own words). It reads only what ``request.auth`` (an API key, or
    None for a session) offers, so no app needs to import apikeys; it costs no query.
    """

    def has_permission(self, request, view):
        api_key = request.auth
        if api_key is None:
            return True
        method = "GET" if request.method == "HEAD" else request.method
        needed = view.key_permissions.get(method)
        if needed is None:  # OPTIONS, or a method the view refuses anyway
            return True
        if not api_key.grants(needed):
            self.message = f"This API key lacks the '{needed}' permission"
            return False
        refusal = self.scoped_refusal(view, api_key, method, needed)
        if refusal:
            self.message = refusal
            return False
        return True

    def scoped_refusal(self, view, api_key, method: str, needed: str) -> str | None:
        """Why a key with the permission is still refused (None: it is not)."""
        return None


class SharedDataKeyGrants(KeyGrants):
    """For what all of an owner's flows share (files, knowledge bases): a key limited to chosen
    flows may read it but not change it; the view names it in ``scoped_key_cannot_write``."""

    def scoped_refusal(self, view, api_key, method, needed):
        if needed == "write" and api_key.flow_scope is not None:
            return view.scoped_key_cannot_write
        return None
