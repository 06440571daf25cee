import json

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from .models import Flow

MAX_IMPORT_FILES = 20


def _check_size(upload):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if upload.size > limit:
        raise forms.ValidationError(f"“{upload.name}” is too large: flows up to {filesizeformat(limit)} can be imported.")
    return upload


class MultipleFileInput(forms.FileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one field: ``cleaned_data`` is a list (one empty choice is the required error)."""

    widget = MultipleFileInput

    def clean(self, data, initial=None):
        if not data:
            return [super().clean(None, initial)]
        files = data if isinstance(data, (list, tuple)) else [data]
        if len(files) > MAX_IMPORT_FILES:
            raise forms.ValidationError(f"Choose at most {MAX_IMPORT_FILES} files at a time.")
        return [super(MultipleFileField, self).clean(upload, initial) for upload in files]


class FlowImportForm(forms.Form):
    """Langflow export files (each one flow, a list of flows, or ``{"flows": [...]}``)."""

    file = MultipleFileField(
        label="Langflow export file",
        help_text="One or more .json files saved with Export in Langflow.",
        widget=MultipleFileInput(attrs={"accept": ".json,application/json"}),
        error_messages={"required": "Choose a .json file to import.", "empty": "The file is empty."},
    )

    def clean_file(self):
        return [_check_size(upload) for upload in self.cleaned_data["file"]]


class FlowReplaceForm(forms.Form):
    """A new export of this flow: its graph replaces the stored one."""

    file = forms.FileField(
        label="New export of this flow",
        help_text="A .json file with one flow. The flow keeps its id, name and endpoint name.",
        widget=forms.FileInput(attrs={"accept": ".json,application/json"}),
        error_messages={"required": "Choose a .json file.", "empty": "The file is empty."},
    )

    def clean_file(self):
        return _check_size(self.cleaned_data["file"])


class FlowSettingsForm(forms.ModelForm):
    """Rename a flow, describe it, and choose the endpoint name its API URL may use."""

    class Meta:
        model = Flow
        fields = ["name", "endpoint_name", "description"]
        labels = {"endpoint_name": "Endpoint name"}
        help_texts = {"endpoint_name": "Optional. Clients may call /api/v1/run/<endpoint name> instead of the id: "
                                       "letters, digits, - and _. Changing it breaks clients that use the old one."}
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def clean_endpoint_name(self):
        return self.cleaned_data["endpoint_name"] or None

    def clean_description(self):
        return self.cleaned_data["description"] or ""


class RunFlowForm(forms.Form):
    """The Run box: the message the flow's Chat Input receives, and optionally tweaks and a session."""

    input_value = forms.CharField(
        label="Message",
        required=False,
        strip=False,
        max_length=100_000,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "Type a message for the flow…",
                                     "aria-describedby": "run-keys-hint"}),
    )
    tweaks = forms.CharField(
        label="Tweaks (JSON)",
        required=False,
        max_length=100_000,
        help_text='Change fields of components for this run only: by component id or name, '
                  '{"ChatInput-b6UCc": {"sender_name": "Ada"}}, or a field of every component, {"temperature": 0.2}.',
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "autocomplete": "off",
                                     "class": "mono", "data-json-object": ""}),
    )
    session_id = forms.CharField(
        label="Session id",
        required=False,
        max_length=255,
        help_text="Runs with the same session id share their chat history. Empty: the flow's id.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def clean_tweaks(self) -> dict:
        text = self.cleaned_data["tweaks"].strip()
        if not text:
            return {}
        try:
            tweaks = json.loads(text)
        except ValueError as error:
            raise forms.ValidationError(f"Tweaks must be JSON: {error}.") from None
        if not isinstance(tweaks, dict):
            raise forms.ValidationError('Tweaks must be a JSON object, e.g. {"ChatInput-b6UCc": {"sender_name": "Ada"}}.')
        return tweaks  # the run checks what each names (a node, a display name, a field)

    def clean_session_id(self) -> str:
        return self.cleaned_data["session_id"].strip()
