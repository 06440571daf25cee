from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat


class FlowImportForm(forms.Form):
    """A Langflow export file (one flow, a list of flows, or ``{"flows": [...]}``)."""

    file = forms.FileField(
        label="Langflow export file",
        help_text="A .json file saved with Export in Langflow.",
        widget=forms.FileInput(attrs={"accept": ".json,application/json"}),
        error_messages={"required": "Choose a .json file to import.", "empty": "The file is empty."},
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if upload.size > limit:
            raise forms.ValidationError(f"The file is too large: flows up to {filesizeformat(limit)} can be imported.")
        return upload


class RunFlowForm(forms.Form):
    """The Run box: the message the flow's Chat Input receives."""

    input_value = forms.CharField(
        label="Message",
        required=False,
        strip=False,
        max_length=100_000,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "Type a message for the flow…"}),
    )
