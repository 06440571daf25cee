"""Site-wide views: health check and error pages (JSON on API routes, HTML elsewhere)."""

from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .api import BAD_REQUEST, client_error, json_error

TITLES = {400: "Bad request", 403: "Forbidden", 404: "Not found", 413: "Request too large",
          422: "Unprocessable request", 500: "Something went wrong"}


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


@never_cache
@require_GET
def health(request):
    return JsonResponse({"status": "ok"})


def error_response(request, status_code: int, message: str, title: str | None = None):
    """The site's answer for an error: ``{"detail": message}`` on API routes, the error page elsewhere."""
    if _is_api(request):
        return json_error(status_code, message)
    context = {"title": title or TITLES.get(status_code, "Bad request"), "message": message,
               "status_code": status_code}
    return render(request, "errors/error.html", context, status=status_code)


def bad_request(request, exception=None):
    """Django's answer to SuspiciousOperation, BadRequest and unreadable forms; 413 for a body too large."""
    known = client_error(exception) if exception is not None else None
    status_code, message = known or (400, BAD_REQUEST)
    return error_response(request, status_code, message)


def permission_denied(request, exception=None):
    return error_response(request, 403, "You do not have permission to see this page.")


def page_not_found(request, exception=None):
    return error_response(request, 404, "Not found.")


def server_error(request):
    return error_response(request, 500, "Internal server error.")
