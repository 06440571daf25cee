"""Tell the sign-in page that the visitor's session ended, so it can say so.

A session that expired (or was ended on the server) leaves the browser with a cookie naming no
session. Django's SessionMiddleware deletes that cookie on the very response that sends the
visitor to the sign-in page, so the sign-in page itself can no longer see it. This middleware,
outside SessionMiddleware, notices that response (a stale session cookie deleted on the way to
the sign-in page with a ``next``) and leaves a short-lived marker cookie for the sign-in page.
No query is added: it only looks at the request's cookies and the response's headers.
"""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import resolve_url

from core.middleware import DualModeMiddleware

SESSION_ENDED_COOKIE = "session_ended"
SESSION_ENDED_SECONDS = 600


def mark_session_ended(response) -> None:
    """Leave the marker the sign-in page reads (no secret in it: it only says "your session ended")."""
    response.set_cookie(SESSION_ENDED_COOKIE, "1", max_age=SESSION_ENDED_SECONDS, httponly=True, samesite="Lax",
                        secure=settings.SESSION_COOKIE_SECURE)


def forget_session_ended(response) -> None:
    response.delete_cookie(SESSION_ENDED_COOKIE, samesite="Lax")


def _deletes_session_cookie(response) -> bool:
    morsel = response.cookies.get(settings.SESSION_COOKIE_NAME)
    return morsel is not None and morsel.value == "" and str(morsel["max-age"]) == "0"


def _sends_to_sign_in(response) -> bool:
    location = response.get("Location", "") if response.status_code in (301, 302, 303, 307, 308) else ""
    return location.startswith(resolve_url(settings.LOGIN_URL) + "?")  # login_required adds ?next=


def _noted(request, response):
    if (settings.SESSION_COOKIE_NAME in request.COOKIES and _deletes_session_cookie(response)
            and _sends_to_sign_in(response)):
        mark_session_ended(response)
    return response


class SessionEndedMiddleware(DualModeMiddleware):
    """Mark the response that sends a visitor whose session ended to the sign-in page."""

    def after(self, request, response):
        return _noted(request, response)
