"""The Variables page's forms. A value field never renders what was typed back (a Credential
must not come back in a page, not even after a mistake elsewhere in the form)."""

from django import forms
from django.core.exceptions import ValidationError

from . import services
from .models import VariableType

TYPE_HELP = "A Credential is encrypted and never shown again; a Generic is plain text, shown in this list."
FIELDS_HELP = "Comma-separated, e.g. api_key, openai_api_key (optional)."


def _secret_input() -> forms.PasswordInput:
    return forms.PasswordInput(render_value=False, attrs={"autocomplete": "off", "spellcheck": "false"})


def _field_names(text: str) -> list[str]:
    return services.clean_default_fields([part.strip() for part in text.split(",") if part.strip()])


class VariableCreateForm(forms.Form):
    name = forms.CharField(max_length=255, strip=False,
                           widget=forms.TextInput(attrs={"placeholder": "OPENAI_API_KEY", "autocomplete": "off"}))
    type = forms.ChoiceField(choices=VariableType.choices, initial=VariableType.CREDENTIAL, help_text=TYPE_HELP)
    value = forms.CharField(strip=False, widget=_secret_input())
    default_fields = forms.CharField(required=False, label="Apply to fields", help_text=FIELDS_HELP)

    def clean_name(self):
        return services.clean_name(self.cleaned_data["name"])

    def clean_value(self):
        return services.clean_value(self.cleaned_data["value"])

    def clean_default_fields(self):
        return _field_names(self.cleaned_data["default_fields"])


class VariableEditForm(forms.Form):
    value = forms.CharField(strip=False, required=False, label="New value", widget=_secret_input(),
                            help_text="Leave empty to keep the current value.")
    default_fields = forms.CharField(required=False, label="Apply to fields", help_text=FIELDS_HELP)

    def clean_value(self):
        value = self.cleaned_data["value"]
        return services.clean_value(value) if value else None

    def clean_default_fields(self):
        return _field_names(self.cleaned_data["default_fields"])


def add_service_error(form: forms.Form, field: str, error: ValidationError) -> None:
    form.add_error(field, error.messages)
