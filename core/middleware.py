"""The site's middleware, for both sync and async serving: ours, and Django's run in place.

The site is served through ASGI. Django runs a middleware that is not async-capable by handing
the whole rest of the request to a thread, an async run view included, and runs each hook of an
async-capable ``MiddlewareMixin`` on a thread of its own: a dozen thread hops per request, the
bulk of a short request's cost. The hooks of Django's middleware below do no I/O (the session
and the user are loaded lazily, by the views, on their threads), so here they run in place on
the event loop; only saving a changed session, or messages, or a CSRF refusal's page goes to a
thread. ``settings.MIDDLEWARE`` keeps Django's names (its deploy checks look for them) and the
ASGI application serves them with these subclasses (``for_asgi``); ``tests/site/test_asgi.py``
checks that every middleware it serves is async-capable and runs its hooks in place.
"""

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.contrib.auth import middleware as auth_middleware
from django.contrib.messages import middleware as messages_middleware
from django.contrib.sessions import middleware as sessions_middleware
from django.http import HttpResponse, HttpResponseBase
from django.middleware import clickjacking, common, csrf, security
from django.utils.deprecation import MiddlewareMixin
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


class AsyncCapable:
    """Be a coroutine under ASGI and plain under WSGI: ``__call__`` hands the request to ``_acall``
    or ``_call``. Subclasses call ``_choose_mode(get_response)`` from their ``__init__``."""

    sync_capable = True
    async_capable = True
    is_async: bool

    if TYPE_CHECKING:  # defined by each subclass
        def _call(self, request): ...
        async def _acall(self, request): ...

    def _choose_mode(self, get_response) -> None:
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        return self._acall(request) if self.is_async else self._call(request)


class DualModeMiddleware(AsyncCapable):
    """A middleware running its own ``before(request)`` and ``after(request, response)`` in place
    (they must do no I/O), with no hop to a thread."""

    def __init__(self, get_response):
        self.get_response = get_response
        self._choose_mode(get_response)

    def _call(self, request):
        return self.before(request) or self.after(request, self.get_response(request))

    async def _acall(self, request):
        return self.before(request) or self.after(request, await self.get_response(request))

    def before(self, request):
        return None

    def after(self, request, response):
        return response


class ChunkedBodyMiddleware(DualModeMiddleware):
    """Give a body sent without Content-Length (``Transfer-Encoding: chunked``) its length.

    The ASGI server has read it whole by now, but DRF takes a request without Content-Length
    for one without a body, and would drop its inputs and tweaks without a word. Measuring it
    reads it here (in memory, or a spooled file past 2.5 MB), within DATA_UPLOAD_MAX_MEMORY_SIZE.
    """

    def before(self, request):
        chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not request.META.get("CONTENT_LENGTH"):
            request.META["CONTENT_LENGTH"] = str(len(request.body))
        return None


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


class StaticFilesMiddleware(AsyncCapable, WhiteNoiseMiddleware):
    """WhiteNoise, async-capable: it has no async mode of its own (as of 6.12).

    The file lookup is a dictionary read; the file itself is read on a thread and answered
    whole (static files are small), since Django would otherwise read a file response's
    iterator on a thread anyway, with a warning.
    """

    def __init__(self, get_response=None, *args, **kwargs):
        super().__init__(get_response, *args, **kwargs)
        self._choose_mode(get_response)

    def _call(self, request):
        return WhiteNoiseMiddleware.__call__(self, request)

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


if TYPE_CHECKING:
    _Middleware = MiddlewareMixin
else:
    _Middleware = object


class InPlaceHooks(_Middleware):
    """For a Django ``MiddlewareMixin``: under ASGI, call its hooks on the event loop.

    ``response_needs_thread`` says when ``process_response`` may do I/O (then it runs on the
    request's thread, as Django would have run it). Under WSGI nothing changes.
    """

    if TYPE_CHECKING:  # the hook of the middleware this is mixed into, when it has one
        def process_view(self, request, *args: Any, **kwargs: Any) -> Any: ...

    def __init__(self, get_response):
        super().__init__(get_response)
        if self.async_mode and hasattr(self, "process_view"):
            # Django hops to a thread for a sync one; its handler reads the hook off the instance.
            self.process_view = self.process_view_in_place  # type: ignore[method-assign]  # on purpose

    async def process_view_in_place(self, request, *args, **kwargs):
        return type(self).process_view(self, request, *args, **kwargs)

    async def __acall__(self, request):
        response = self.process_request(request) if hasattr(self, "process_request") else None
        # Django calls __acall__ only in async mode, where get_response is a coroutine function.
        response = response or await cast("Awaitable[HttpResponseBase]", self.get_response(request))
        if hasattr(self, "process_response"):
            if self.response_needs_thread(request, response):
                return await sync_to_async(self.process_response, thread_sensitive=True)(request, response)
            response = self.process_response(request, response)
        return response

    def response_needs_thread(self, request, response) -> bool:
        return False


class SecurityMiddleware(InPlaceHooks, security.SecurityMiddleware):
    pass


class SessionMiddleware(InPlaceHooks, sessions_middleware.SessionMiddleware):
    def response_needs_thread(self, request, response) -> bool:
        session = getattr(request, "session", None)
        # Saving writes the session; anything else reads attributes already in memory.
        return session is not None and (session.modified or self.get_save_every_request())

    def get_save_every_request(self) -> bool:
        from django.conf import settings

        return settings.SESSION_SAVE_EVERY_REQUEST


class CommonMiddleware(InPlaceHooks, common.CommonMiddleware):
    pass


class _Refused(Exception):
    def __init__(self, reason: str):
        self.reason = reason


class CsrfViewMiddleware(InPlaceHooks, csrf.CsrfViewMiddleware):
    """The token check in place; a refusal's page (it reads the user) rendered on a thread."""

    async def process_view_in_place(self, request, *args, **kwargs):
        try:
            return await super().process_view_in_place(request, *args, **kwargs)
        except _Refused as refused:
            # _reject is Django's private refusal hook, which django-stubs leaves out.
            return await sync_to_async(csrf.CsrfViewMiddleware._reject, thread_sensitive=True)(  # type: ignore[attr-defined]
                self, request, refused.reason)

    def _reject(self, request, reason):
        if self.async_mode:
            raise _Refused(reason)
        return super()._reject(request, reason)  # type: ignore[misc]  # Django's private hook (above)


class AuthenticationMiddleware(InPlaceHooks, auth_middleware.AuthenticationMiddleware):
    pass


class MessageMiddleware(InPlaceHooks, messages_middleware.MessageMiddleware):
    def response_needs_thread(self, request, response) -> bool:
        storage = getattr(request, "_messages", None)
        # Storing messages writes to the session (which may first have to be read).
        return storage is not None and (storage.used or storage.added_new)


class XFrameOptionsMiddleware(InPlaceHooks, clickjacking.XFrameOptionsMiddleware):
    pass


IN_PLACE = {
    "django.middleware.security.SecurityMiddleware": SecurityMiddleware,
    "django.contrib.sessions.middleware.SessionMiddleware": SessionMiddleware,
    "django.middleware.common.CommonMiddleware": CommonMiddleware,
    "django.middleware.csrf.CsrfViewMiddleware": CsrfViewMiddleware,
    "django.contrib.auth.middleware.AuthenticationMiddleware": AuthenticationMiddleware,
    "django.contrib.messages.middleware.MessageMiddleware": MessageMiddleware,
    "django.middleware.clickjacking.XFrameOptionsMiddleware": XFrameOptionsMiddleware,
}


def for_asgi(middleware: list[str]) -> list[str]:
    """``settings.MIDDLEWARE`` with each of Django's middleware replaced by its in-place twin."""
    return [f"{__name__}.{IN_PLACE[path].__name__}" if path in IN_PLACE else path for path in middleware]
