"""Sign in, sign out and change the password: Django's auth views with this site's templates."""

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme, urlencode

from core import views as site_views

from .forms import ThrottledAuthenticationForm, ThrottledPasswordChangeForm
from .middleware import SESSION_ENDED_COOKIE, forget_session_ended, mark_session_ended


def answer_lockout(response):
    """Answer 429 with Retry-After when the page's form was refused because the client is locked out."""
    form = (getattr(response, "context_data", None) or {}).get("form")
    seconds = getattr(form, "seconds_locked", 0)
    if seconds:
        response.status_code = 429
        response["Retry-After"] = str(seconds)
    return response


class SignInView(auth_views.LoginView):
    """Sign in; a refused attempt answers 400, a locked-out client 429 with Retry-After."""

    template_name = "registration/login.html"
    form_class = ThrottledAuthenticationForm
    redirect_authenticated_user = True

    def form_invalid(self, form):
        response = super().form_invalid(form)
        response.status_code = 400
        return answer_lockout(response)

    def form_valid(self, form):
        response = super().form_valid(form)
        forget_session_ended(response)
        return response

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        if self.request.method == "GET":
            context["session_expired"] = session_expired(self.request)
        return context


def session_expired(request) -> bool:
    """The visitor's session ended (expired, or ended on the server), as opposed to a first visit or
    a sign-out: the browser sends a session cookie naming no session, or the marker that
    ``users.middleware`` left when Django deleted such a cookie on the way here."""
    if request.user.is_authenticated:
        return False
    if request.COOKIES.get(SESSION_ENDED_COOKIE):
        return True
    return settings.SESSION_COOKIE_NAME in request.COOKIES and request.session.session_key is None


def _same_site_path(request, url: str | None) -> str | None:
    """The path (with its query) of ``url`` when it is a page of this site, else None."""
    if not url or not url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()},
                                                       require_https=request.is_secure()):
        return None
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


class SignOutView(auth_views.LogoutView):
    """Sign out (POST only, as in Django 5) and come back to the sign-in page, which says so."""

    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        messages.info(request, "You are signed out.")  # kept in the new, empty session
        return response


class ThrottledPasswordChangeView(auth_views.PasswordChangeView):
    """Django's password change with the current-password check under the sign-in throttle."""

    form_class = ThrottledPasswordChangeForm

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}


class PasswordChangeView(ThrottledPasswordChangeView):
    """Change the password (the session stays signed in), then go back to the start page."""

    template_name = "registration/password_change_form.html"
    success_url = reverse_lazy("home")

    def form_valid(self, form):
        messages.success(self.request, "Your password was changed.")
        return super().form_valid(form)

    def form_invalid(self, form):
        response = super().form_invalid(form)
        response.status_code = 400
        return answer_lockout(response)


CSRF_EXPIRED = "This page’s form expired (its security token is no longer valid). Reload the page and send it again."


def csrf_failure(request, reason=""):
    """Refuse a form without a valid CSRF token, saying why and offering the way back.

    Django's own page is a debugging aid; a person most often lands here from a form left open
    across a sign-out or a session's end, and needs only to reload it (or to sign in again, and
    come back to the same page). API routes keep their JSON 403; the page's scripts get JSON too.
    """
    if request.path.startswith("/api/"):
        return site_views.permission_denied(request)
    expired = session_expired(request)
    back = _same_site_path(request, request.headers.get("Referer")) or "/"
    login_url = f"{reverse('login')}?{urlencode({'next': back})}"
    response: HttpResponse
    if request.headers.get("Accept") in ("application/json", "application/x-ndjson"):
        if expired:
            response = JsonResponse({"detail": "Your session expired. Sign in again.", "code": "session_expired",
                                     "login_url": login_url}, status=401)
        else:
            response = JsonResponse({"detail": CSRF_EXPIRED, "code": "csrf_failed"}, status=403)
    else:
        context = {"session_expired": expired, "back_url": back, "login_url": login_url}
        response = render(request, "registration/csrf_failure.html", context, status=403)
    if expired:
        mark_session_ended(response)  # the stale session cookie is deleted on the way out
    return response
