from django import forms
from django.contrib.auth.forms import AuthenticationForm

from . import throttling


class ThrottledAuthenticationForm(AuthenticationForm):
    """Django's sign-in form, refusing every attempt while the client is locked out."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Wrong username or password. Both are case-sensitive.",
    }

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        self.seconds_locked = 0
        self.fields["username"].widget.attrs.update({"autocomplete": "username", "autocapitalize": "none"})
        self.fields["password"].widget.attrs.update({"autocomplete": "current-password"})

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        # Checked before the password, so a right guess during the lockout reveals nothing.
        self._refuse_if_locked(username)
        try:
            cleaned = super().clean()
        except forms.ValidationError as error:
            if error.code == "invalid_login":
                throttling.record_failure(self.request, username)
                self._refuse_if_locked(username)  # this failure may have been the last one allowed
            raise
        throttling.clear_failures(self.request, username)
        return cleaned

    def _refuse_if_locked(self, username: str) -> None:
        self.seconds_locked = throttling.seconds_locked(self.request, username)
        if self.seconds_locked:
            raise forms.ValidationError(throttling.wait_message(self.seconds_locked), code="throttled")
