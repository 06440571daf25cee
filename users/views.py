"""Sign in, sign out and change the password: Django's auth views with this site's templates."""

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.urls import reverse_lazy

from core import views as site_views

from .forms import ThrottledAuthenticationForm, ThrottledPasswordChangeForm


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


def csrf_failure(request, reason=""):
    """Refuse a form without a valid CSRF token with the site's 403 page (JSON on API routes).

    Django's own page is a debugging aid; a person most often lands here from a form left
    open across a sign-out, and needs only to reload it.
    """
    return site_views.permission_denied(request)
