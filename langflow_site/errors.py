"""Client errors raised outside the API's views answer 4xx, never 500.

DRF views route their exceptions through ``langflow_site.api.exception_handler``; this
middleware does the same for plain Django views (the pages, the admin) with the exceptions
Django does not map itself: a RecursionError from absurd nesting, a number the database cannot
hold, undecodable text. Django's 500 handler cannot tell them apart: under ASGI it runs on
another thread and never sees the exception.
"""

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
