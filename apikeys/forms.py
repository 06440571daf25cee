from django import forms

from .models import ApiKey


class ApiKeyCreateForm(forms.Form):
    """What a person chooses for a new key: only a name. The secret is generated, never typed."""

    name = forms.CharField(
        label="Name",
        required=False,
        max_length=ApiKey._meta.get_field("name").max_length,
        help_text="Optional. Helps you recognise the key later, e.g. where it is used.",
        widget=forms.TextInput(attrs={"placeholder": "My secret key", "autocomplete": "off", "autofocus": True}),
        error_messages={"max_length": "Keep the name to %(limit_value)d characters or fewer (it has %(show_value)d)."},
    )
