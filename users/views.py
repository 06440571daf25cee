"""Sign in, sign out and change the password: Django's auth views with this site's templates."""

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.urls import reverse_lazy

from .forms import ThrottledAuthenticationForm


class SignInView(auth_views.LoginView):
    """Sign in; a refused attempt answers 400, a locked-out client 429 with Retry-After."""

    template_name = "registration/login.html"
    form_class = ThrottledAuthenticationForm
    redirect_authenticated_user = True

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.seconds_locked:
            response.status_code = 429
            response["Retry-After"] = str(form.seconds_locked)
        else:
            response.status_code = 400
        return response


class SignOutView(auth_views.LogoutView):
    """Sign out (POST only, as in Django 5) and come back to the sign-in page."""


class PasswordChangeView(auth_views.PasswordChangeView):
    """Change the password (the session stays signed in), then go back to the start page."""

    template_name = "registration/password_change_form.html"
    success_url = reverse_lazy("home")

    def form_valid(self, form):
        messages.success(self.request, "Your password was changed.")
        return super().form_valid(form)

    def form_invalid(self, form):
        response = super().form_invalid(form)
        response.status_code = 400
        return response
