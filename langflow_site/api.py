"""How the API answers errors: always JSON with ``detail``, Langflow's status codes, never a trace."""

import logging

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apikeys.authentication import MISSING_KEY_MESSAGE

logger = logging.getLogger("langflow_site.api")


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


def exception_handler(exc, context):
    """Map every error to ``{"detail": ...}`` with a 4xx status; log (never return) the unexpected."""
    if isinstance(exc, exceptions.NotAuthenticated):
        return Response({"detail": MISSING_KEY_MESSAGE}, status=status.HTTP_403_FORBIDDEN)
    if isinstance(exc, exceptions.AuthenticationFailed):
        response = Response({"detail": str(exc.detail)}, status=status.HTTP_403_FORBIDDEN)
        # A refused key is already written to the audit log (lookup id, client IP, reason) and
        # the server's access log; a third "Forbidden" line per guess would only make guessing
        # cost the server more than a valid request does.
        response._has_been_logged = True
        return response
    if isinstance(exc, exceptions.ValidationError):
        # FastAPI (and so Langflow's clients) use 422 for a well-formed request with bad fields.
        detail = exc.detail
        body = {"detail": "; ".join(_flatten(detail)) or "Invalid input."}
        if isinstance(detail, dict):
            body["errors"] = detail
        return Response(body, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
    if isinstance(exc, Http404):
        message = str(exc) if exc.args and str(exc) else "Not found."
        return Response({"detail": message}, status=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, PermissionDenied):
        return Response({"detail": str(exc) or "Permission denied."}, status=status.HTTP_403_FORBIDDEN)
    response = drf_exception_handler(exc, context)
    if response is not None:
        if isinstance(response.data, dict) and "detail" in response.data:
            response.data = {**response.data, "detail": str(response.data["detail"])}
        return response
    logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
    return Response({"detail": "Internal server error."}, status=status.HTTP_500_INTERNAL_SERVER_ERROR)


def json_error(status_code: int, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail}, status=status_code)
