"""Site-wide views: health check and error pages (JSON on API routes, HTML elsewhere)."""

from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .api import json_error


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


@never_cache
@require_GET
def health(request):
    return JsonResponse({"status": "ok"})


def _error(request, status_code: int, title: str, message: str):
    if _is_api(request):
        return json_error(status_code, message)
    return render(request, "errors/error.html", {"title": title, "message": message}, status=status_code)


def bad_request(request, exception=None):
    return _error(request, 400, "Bad request", "The request could not be understood.")


def permission_denied(request, exception=None):
    return _error(request, 403, "Forbidden", "You do not have permission to see this page.")


def page_not_found(request, exception=None):
    return _error(request, 404, "Not found", "Not found.")


def server_error(request):
    return _error(request, 500, "Something went wrong", "Internal server error.")
