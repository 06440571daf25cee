import datetime

from django import forms
from django.utils import timezone

from .models import ApiKey

EXPIRY_CHOICES = [("", "Never"), ("7", "7 days"), ("30", "30 days"), ("90", "90 days"), ("365", "1 year")]
GRACE_CHOICES = [("0", "At once"), ("1", "In 1 hour"), ("24", "In 24 hours"), ("168", "In 7 days")]


class ApiKeyCreateForm(forms.Form):
    """What a person chooses for a new key: a name and a lifetime. The secret is generated, never typed."""

    name = forms.CharField(
        label="Name",
        required=False,
        max_length=ApiKey._meta.get_field("name").max_length,
        help_text="Optional. Helps you recognise the key later, e.g. where it is used.",
        widget=forms.TextInput(attrs={"placeholder": "My secret key", "autocomplete": "off", "autofocus": True}),
        error_messages={"max_length": "Keep the name to %(limit_value)d characters or fewer (it has %(show_value)d)."},
    )
    expires_in = forms.TypedChoiceField(
        label="Expires",
        choices=EXPIRY_CHOICES,
        coerce=int,
        empty_value=None,
        required=False,
        help_text="After this the key is refused. A key that never expires must be deleted by hand.",
    )

    def expires_at(self) -> datetime.datetime | None:
        days = self.cleaned_data.get("expires_in")
        return timezone.now() + datetime.timedelta(days=days) if days else None


class ApiKeyRotateForm(forms.Form):
    """When the old secret stops working once a key has a new one."""

    grace_period_hours = forms.TypedChoiceField(
        label="The old secret stops working",
        choices=GRACE_CHOICES,
        coerce=int,
        initial="0",
        help_text="Keep it working for a while if programs still use it; at most 7 days.",
    )

    def grace(self) -> datetime.timedelta:
        return datetime.timedelta(hours=self.cleaned_data["grace_period_hours"])
