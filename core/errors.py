"""Client errors answer 4xx, never 500, wherever they are raised.

DRF views route their exceptions through ``core.api.exception_handler``; the middleware
here does the same for plain Django views (the pages, the admin) with the exceptions Django does
not map itself: a RecursionError from absurd nesting, a number the database cannot hold,
undecodable text. Django's 500 handler cannot tell them apart: under ASGI it runs on another
thread and never sees the exception. And ``install_lazy_query_parsing`` keeps Django from
parsing the query string while it builds the request, where no handler could answer its errors.
"""

from django.http import HttpRequest
from django.utils.deprecation import MiddlewareMixin

from .api import client_error, log_client_error
from .views import error_response


class ClientErrorMiddleware(MiddlewareMixin):
    """Answer a client error from a view with its 4xx: JSON on API routes, the error page elsewhere."""

    def process_exception(self, request, exception):
        known = client_error(exception)
        if known is None:
            return None
        log_client_error(exception, request.path)
        status_code, message = known
        return error_response(request, status_code, message)


def _set_encoding(request, value):
    """Django's ``HttpRequest.encoding`` setter, without building ``GET`` as a side effect.

    Django's own setter asks ``hasattr(request, "GET")``, which parses the query string, and
    it runs while the request object is being built whenever the Content-Type names a charset.
    A query string over DATA_UPLOAD_MAX_NUMBER_FIELDS then raises TooManyFieldsSent before any
    middleware or view exists to answer it: the server itself answers 500 (WSGI and ASGI alike).
    Dropping only a QueryDict already built keeps the setter's purpose (decode again with the
    new charset) and leaves the parsing, and its 400, to the first reader.
    """
    request._encoding = value
    request.__dict__.pop("GET", None)
    if hasattr(request, "_post"):
        del request._post


def install_lazy_query_parsing() -> None:
    """Replace the setter on HttpRequest (and so on WSGIRequest and ASGIRequest); called once at start."""
    # Replaces Django's property on purpose; django-stubs types it as an overloaded method.
    HttpRequest.encoding = HttpRequest.encoding.setter(_set_encoding)  # type: ignore[method-assign, attr-defined]
