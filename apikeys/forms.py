import datetime

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from flows.models import Flow

from . import access
from .access import KeyAccess
from .models import PERMISSIONS, ApiKey

SCOPE_ALL, SCOPE_CHOSEN = "all", "chosen"
SCOPE_CHOICES = [(SCOPE_ALL, "All my flows"), (SCOPE_CHOSEN, "Only the flows I choose")]
PERMISSION_LABELS = {"run": "Run flows", "read": "List and read flows", "write": "Create, change and delete flows"}
PERMISSION_CHOICES = [(str(permission), PERMISSION_LABELS[permission]) for permission in PERMISSIONS]
ALLOWED_IPS_EXAMPLE = "203.0.113.7\n10.0.0.0/8\n2001:db8::/32"
EXPIRY_CHOICES = [("", "Never"), ("7", "7 days"), ("30", "30 days"), ("90", "90 days"), ("365", "1 year")]
GRACE_CHOICES = [("0", "At once"), ("1", "In 1 hour"), ("24", "In 24 hours"), ("168", "In 7 days")]


def full_access_unless_given(data, *, scope: str = "scope", permissions: str = "permissions"):
    """Form data that says nothing of access (no ``scope``: a script older than these fields) gets full access.

    Pages always send ``scope`` (a radio button is always checked), so there unchecking every
    permission is still an error, never full access.
    """
    if data is None or scope in data:
        return data
    data = data.copy()  # a QueryDict from a request, or a dict
    data[scope] = SCOPE_ALL
    everything = [value for value, _label in PERMISSION_CHOICES]
    if hasattr(data, "setlist"):
        data.setlist(permissions, everything)
    else:
        data[permissions] = everything
    return data


class OwnFlowsField(forms.ModelMultipleChoiceField):
    """Checkboxes of the owner's flows. Another user's flow id reads like one that does not exist."""

    widget = forms.CheckboxSelectMultiple
    default_error_messages = {
        "invalid_choice": "“%(value)s” is not one of your flows.",
        "invalid_pk_value": "“%(pk)s” is not one of your flows.",
    }

    def label_from_instance(self, obj):
        return obj.name


class KeyAccessMixin:
    """Clean and read a form's access fields: ``scope``, ``flows``, ``permissions``, ``allowed_ips``.

    Each name follows ``access_prefix`` (the admin's form prefixes them so that they are no
    model fields, which saving the form would write without an audit line).
    """

    access_prefix = ""
    no_flow_message = "Choose at least one flow, or “All my flows”."

    def clean_access(self, cleaned: dict) -> dict:
        """Normalise permissions and allowed IPs (one error per bad entry) and check the flow choice."""
        for name, clean in (("permissions", access.clean_permissions), ("allowed_ips", access.clean_allowed_ips)):
            field = self.access_prefix + name
            if field in cleaned:
                try:
                    cleaned[field] = clean(cleaned[field])
                except ValidationError as error:
                    self.add_error(field, error)
        field = self.access_prefix + "flows"
        flows = cleaned.get(field)
        if cleaned.get(self.access_prefix + "scope") == SCOPE_CHOSEN and flows is not None:
            if not flows:
                self.add_error(field, self.no_flow_message)
            elif len(flows) > access.MAX_SCOPED_FLOWS:
                self.add_error(field, f"Choose at most {access.MAX_SCOPED_FLOWS} flows, or all flows.")
        return cleaned

    def access(self) -> KeyAccess:
        value = {name: self.cleaned_data[self.access_prefix + name]
                 for name in ("scope", "flows", "permissions", "allowed_ips")}
        chosen = value["scope"] == SCOPE_CHOSEN
        return KeyAccess(
            all_flows=not chosen,
            flow_ids=tuple(str(flow.pk) for flow in value["flows"]) if chosen else (),
            permissions=value["permissions"],
            allowed_ips=value["allowed_ips"],
        )

    @classmethod
    def initial_for(cls, api_key: ApiKey) -> dict:
        initial = {
            "scope": SCOPE_ALL if api_key.all_flows else SCOPE_CHOSEN,
            "flows": list(api_key.flow_ids),
            "permissions": list(api_key.permissions),
            "allowed_ips": "\n".join(api_key.allowed_ips),
        }
        return {cls.access_prefix + name: value for name, value in initial.items()}


class KeyAccessForm(KeyAccessMixin, forms.Form):
    """What a key may do: which of ``owner``'s flows, which permissions, from which addresses."""

    scope = forms.ChoiceField(label="Flows", choices=SCOPE_CHOICES, widget=forms.RadioSelect, initial=SCOPE_ALL)
    flows = OwnFlowsField(
        label="Chosen flows", queryset=Flow.objects.none(), required=False,
        help_text="For any other flow the key gets “Flow not found”, as if it did not exist. "
                  "It cannot create flows either.",
    )
    permissions = forms.MultipleChoiceField(
        label="Permissions", choices=PERMISSION_CHOICES, widget=forms.CheckboxSelectMultiple,
        initial=[value for value, _label in PERMISSION_CHOICES],
        error_messages={"required": "Choose at least one permission."},
    )
    allowed_ips = forms.CharField(
        label="Allowed IPs", required=False, max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": ALLOWED_IPS_EXAMPLE, "spellcheck": "false",
                                     "autocomplete": "off"}),
        help_text="IPv4 or IPv6 addresses and CIDR ranges, one per line. Requests from anywhere else are refused. "
                  "Empty: from anywhere.",
    )

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["flows"].queryset = Flow.objects.owned_by(owner).defer("data").order_by("name")

    def clean(self):
        return self.clean_access(super().clean())


class ApiKeyCreateForm(KeyAccessForm):
    """What a person chooses for a new key: a name, a lifetime and its access. The secret is generated.

    A POST without ``scope`` (from a script that predates these fields) makes a key with full
    access, as before; the page always sends it.
    """

    field_order = ["name", "expires_in", "scope", "flows", "permissions", "allowed_ips"]

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

    def __init__(self, data=None, *args, **kwargs):
        super().__init__(full_access_unless_given(data), *args, **kwargs)

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
