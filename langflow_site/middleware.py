"""Middleware of our own: security headers, and static files, for both sync and async serving.

The site is served through ASGI. Django runs a middleware that is not async-capable by handing
the whole rest of the request to a thread, an async run view included, so every middleware in
``settings.MIDDLEWARE`` must be async-capable; ``tests/site/test_asgi.py`` checks it.
"""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpResponse
from whitenoise.middleware import WhiteNoiseMiddleware

# Scripts, styles, fonts and images come from this origin only: no inline scripts, no inline
# event handlers, no style attributes. So an injected `<script>` or `onerror=` cannot run even
# if escaping were ever missed somewhere. `frame-ancestors 'none'` is the modern twin of
# X-Frame-Options: DENY; `form-action 'self'` stops an injected form posting elsewhere.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

# HTML pages only. Under "no-referrer" (SECURE_REFERRER_POLICY, kept for every other response)
# browsers send `Origin: null` with a form's POST, and Django's CSRF check rightly refuses it:
# no form could be submitted. "same-origin" sends the Referer to this server only, never to
# another site, so a key in a URL still cannot leak through it (and the pages never put one there).
PAGE_REFERRER_POLICY = "same-origin"


# API answers are per caller and may hold secrets: no cache, shared or private, keeps them.
API_CACHE_CONTROL = "no-store"


class DualModeMiddleware:
    """A middleware that is a coroutine under ASGI and plain under WSGI, running its own
    ``after(request, response)`` in place (it must do no I/O), with no hop to a thread."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self._acall(request)
        return self.after(request, self.get_response(request))

    async def _acall(self, request):
        return self.after(request, await self.get_response(request))

    def after(self, request, response):
        return response


class SecurityHeadersMiddleware(DualModeMiddleware):
    """Add the Content-Security-Policy to every response, the pages' Referrer-Policy to HTML,
    and ``Cache-Control: no-store`` to API answers."""

    def after(self, request, response):
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        if response.get("Content-Type", "").startswith("text/html"):
            # Set before SecurityMiddleware's own setdefault, which then leaves it alone.
            response.headers.setdefault("Referrer-Policy", PAGE_REFERRER_POLICY)
        if request.path.startswith("/api/"):
            response.headers["Cache-Control"] = API_CACHE_CONTROL
        return response


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise, async-capable: it has no async mode of its own (as of 6.12).

    The file lookup is a dictionary read; the file itself is read on a thread and answered
    whole (static files are small), since Django would otherwise read a file response's
    iterator on a thread anyway, with a warning.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response=None, *args, **kwargs):
        super().__init__(get_response, *args, **kwargs)
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self._acall(request)
        return super().__call__(request)

    async def _acall(self, request):
        static_file = self.find_file(request.path_info) if self.autorefresh else self.files.get(request.path_info)
        if static_file is None:
            return await self.get_response(request)
        return await sync_to_async(self._serve_whole, thread_sensitive=False)(static_file, request)

    def _serve_whole(self, static_file, request):
        response = self.serve(static_file, request)
        if not response.streaming:
            return response
        try:
            whole = HttpResponse(b"".join(response.streaming_content), status=response.status_code)
        finally:
            response.close()
        for header, value in response.items():
            whole[header] = value
        return whole
