"""Sign-in and password-change forms that answer a lockout in words (``users.throttling``).

The sign-in forms (the site's and the admin's) check the password through ``authenticate()``,
which ``users.backends.ThrottledModelBackend`` puts under the throttle; the password-change
forms check the current password through ``users.throttling.check_password`` themselves. Each
form keeps ``seconds_locked`` so its view can answer 429 with Retry-After.
"""

from typing import TYPE_CHECKING

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm
from django.views.decorators.debug import sensitive_variables

from . import throttling

if TYPE_CHECKING:  # what the mixin expects of the form it is mixed into (request, cleaned_data, clean)
    _SignInForm = AuthenticationForm
else:
    _SignInForm = object


class LockoutMessageMixin(_SignInForm):
    """Replace "wrong username or password" with how long to wait when the client is locked out."""

    seconds_locked = 0

    def clean(self):
        try:
            return super().clean()
        except forms.ValidationError as error:
            if error.code == "invalid_login":
                # The backend refused a locked client unheard, or this failure was the last one allowed.
                self.seconds_locked = throttling.seconds_locked(self.request, self.cleaned_data.get("username") or "")
                if self.seconds_locked:
                    raise forms.ValidationError(throttling.wait_message(self.seconds_locked), code="throttled") from None
            raise


class ThrottledAuthenticationForm(LockoutMessageMixin, AuthenticationForm):
    """The site's sign-in form."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Wrong username or password. Both are case-sensitive.",
    }

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        self.fields["username"].widget.attrs.update({"autocomplete": "username", "autocapitalize": "none"})
        self.fields["password"].widget.attrs.update({"autocomplete": "current-password"})


class ThrottledAdminAuthenticationForm(LockoutMessageMixin, AdminAuthenticationForm):
    """The admin's sign-in form (``users.admin_site.SiteAdmin``)."""


class ThrottledPasswordChangeForm(PasswordChangeForm):
    """Django's password change, its current-password check counted by the sign-in throttle.

    A wrong current password is a failed sign-in of the account; while the client is locked out
    the check is refused before the password is compared.
    """

    seconds_locked = 0

    def __init__(self, user, *args, request=None, **kwargs):
        super().__init__(user, *args, **kwargs)
        self.request = request

    @sensitive_variables("old_password")
    def clean_old_password(self):
        old_password = self.cleaned_data["old_password"]
        username = self.user.get_username()
        try:
            correct = throttling.check_password(self.request, username, lambda: self.user.check_password(old_password))
        except throttling.SignInLocked:
            correct = False
        if not correct:
            self.seconds_locked = throttling.seconds_locked(self.request, username)
            if self.seconds_locked:
                raise forms.ValidationError(throttling.wait_message(self.seconds_locked), code="throttled")
            raise forms.ValidationError(self.error_messages["password_incorrect"], code="password_incorrect")
        return old_password


class ThrottledAdminPasswordChangeForm(ThrottledPasswordChangeForm):
    """The admin's own password change (Django's ``AdminPasswordChangeForm``, throttled)."""

    required_css_class = "required"
