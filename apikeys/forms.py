import datetime
from typing import TYPE_CHECKING

from django import forms
from django.core.exceptions import ValidationError

from flows.models import Flow

from . import access
from .access import KeyAccess, KeyTerms
from .models import NAME_MAX_LENGTH, PERMISSIONS, ApiKey

SCOPE_ALL, SCOPE_CHOSEN = "all", "chosen"
SCOPE_CHOICES = [(SCOPE_ALL, "All my flows"), (SCOPE_CHOSEN, "Only the flows I choose")]
PERMISSION_LABELS = {"run": "Run flows", "read": "List and read flows", "write": "Create, change and delete flows"}
PERMISSION_CHOICES = [(str(permission), PERMISSION_LABELS[permission]) for permission in PERMISSIONS]
ALLOWED_IPS_EXAMPLE = "203.0.113.7\n10.0.0.0/8\n2001:db8::/32"
EXPIRY_CHOICES = [("", "Never"), ("7", "7 days"), ("30", "30 days"), ("90", "90 days"), ("365", "1 year")]
GRACE_CHOICES = [("0", "At once"), ("1", "In 1 hour"), ("24", "In 24 hours"), ("168", "In 7 days")]
DEFAULT_EXPIRY_DAYS = "30"  # a new key's, as GitHub's; "Never" stays a choice, with a warning
NEVER_EXPIRES_WARNING = ("A key that never expires keeps working until you revoke it, wherever it was copied to. "
                         "Prefer an expiry and rotate the key before it.")
KEEP_EXPIRY, NEVER = "keep", "never"
CHANGE_EXPIRY_CHOICES = [(KEEP_EXPIRY, "Keep the current expiry"), ("7", "7 days from now"), ("30", "30 days from now"),
                         ("90", "90 days from now"), ("365", "1 year from now"), (NEVER, "Never")]


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


def flow_choices(form: forms.BaseForm, name: str) -> forms.ModelMultipleChoiceField:
    """The form's field ``name``, a flow choice field declared on its class."""
    field = form.fields[name]
    assert isinstance(field, forms.ModelMultipleChoiceField)  # declared so on the form class
    return field


class FlowChoicesField(forms.ModelMultipleChoiceField):
    """Checkboxes of flows (its queryset lists them); the ids chosen are checked by
    apikeys.access.build_terms, not here, so that every entry point says the same words."""

    widget = forms.CheckboxSelectMultiple

    def label_from_instance(self, obj):
        return obj.name

    def clean(self, value):
        if value in self.empty_values:
            return []
        if not isinstance(value, (list, tuple)):
            raise ValidationError(self.error_messages["invalid_list"], code="invalid_list")
        return [str(entry) for entry in value]


class PermissionChoicesField(forms.MultipleChoiceField):
    """Checkboxes of the permissions; what is ticked is checked by apikeys.access.build_terms."""

    widget = forms.CheckboxSelectMultiple

    def __init__(self, **kwargs):
        super().__init__(choices=PERMISSION_CHOICES, required=False,
                         initial=[value for value, _label in PERMISSION_CHOICES], **kwargs)

    def validate(self, value):
        pass


if TYPE_CHECKING:  # what the mixin expects of the form it is mixed into (add_error)
    _Form = forms.BaseForm
else:
    _Form = object


class KeyAccessMixin(_Form):
    """A form's access fields (``scope``, ``flows``, ``permissions``, ``allowed_ips``), validated by
    apikeys.access.build_terms with a key's expiry, as every other entry point is.

    Each name follows ``access_prefix`` (the admin's form prefixes them so that they are no
    model fields, which saving the form would write without an audit line). After ``clean``,
    ``terms`` holds the valid access and expiry.
    """

    access_prefix = ""
    expiry_field: str | None = None  # the form's field that build_terms's expiry errors go to
    whose = "your"  # the owner, as messages name them
    terms: KeyTerms | None = None

    def clean_terms(self, cleaned: dict, *, owner, current: KeyAccess | None = None, **expiry) -> dict:
        """Validate the access fields (and ``expiry``: ``expires_at`` or ``expires_in_days``) in one go."""
        def name(field: str) -> str:
            return self.access_prefix + field

        self.terms = None
        scope = cleaned.get(name("scope"))
        chosen = scope == SCOPE_CHOSEN
        try:
            self.terms = access.build_terms(
                owner, current=current, whose=self.whose,
                all_flows=None if scope is None else not chosen,
                flow_ids=cleaned.get(name("flows"), []) if chosen else None,
                permissions=cleaned.get(name("permissions")),
                allowed_ips=cleaned.get(name("allowed_ips")),
                **expiry,
            )
        except ValidationError as error:
            fields = {"all_flows": name("scope"), "flow_ids": name("flows"), "permissions": name("permissions"),
                      "allowed_ips": name("allowed_ips"), "expires_at": self.expiry_field}
            for field, messages in error.message_dict.items():
                self.add_error(fields.get(field), messages)
        return cleaned

    def valid_terms(self) -> KeyTerms:
        """The access and expiry the form validated; only for a valid form."""
        if self.terms is None:
            raise ValueError("The form's access is not valid (call is_valid() first).")
        return self.terms

    def access(self) -> KeyAccess:
        return self.valid_terms().access

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
    flows = FlowChoicesField(
        label="Chosen flows", queryset=Flow.objects.none(), required=False,
        help_text="For any other flow the key gets “Flow not found”, as if it did not exist. "
                  "It cannot create flows either.",
    )
    permissions = PermissionChoicesField(label="Permissions")
    allowed_ips = forms.CharField(
        label="Allowed IPs", required=False, max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": ALLOWED_IPS_EXAMPLE, "spellcheck": "false",
                                     "autocomplete": "off"}),
        help_text="IPv4 or IPv6 addresses and CIDR ranges, one per line. Requests from anywhere else are refused. "
                  "Empty: from anywhere.",
    )

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = owner
        flow_choices(self, "flows").queryset = Flow.objects.owned_by(owner).defer("data").order_by("name")

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data  # what Form.clean returns
        return self.clean_terms(cleaned, owner=self.owner, **self.expiry_input(cleaned))

    def expiry_input(self, cleaned: dict) -> dict:
        """The raw expiry for build_terms (none: this form does not set one)."""
        return {}


class ApiKeyCreateForm(KeyAccessForm):
    """What a person chooses for a new key: a name, a lifetime and its access. The secret is generated.

    A POST without ``scope`` (from a script that predates these fields) makes a key with full
    access, as before; the page always sends it.
    """

    field_order = ["name", "expires_in", "scope", "flows", "permissions", "allowed_ips"]

    name = forms.CharField(
        label="Name",
        required=False,
        max_length=NAME_MAX_LENGTH,
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
        initial=DEFAULT_EXPIRY_DAYS,
        help_text="After this the key is refused. You can change it later on the key's page.",
    )

    expiry_field = "expires_in"

    def __init__(self, data=None, *args, **kwargs):
        super().__init__(full_access_unless_given(data), *args, **kwargs)

    def expiry_input(self, cleaned: dict) -> dict:
        return {"expires_in_days": cleaned.get("expires_in", access.ABSENT)}

    def expires_at(self) -> datetime.datetime | None:
        return self.valid_terms().expires_at


class ChangeExpiryField(forms.ChoiceField):
    """Keep a key's expiry, set it some days from now, or make it never expire."""

    def __init__(self, **kwargs):
        kwargs.setdefault("label", "Expires")
        super().__init__(choices=CHANGE_EXPIRY_CHOICES, initial=KEEP_EXPIRY, **kwargs)


def changed_expiry(choice: str, now: datetime.datetime | None = None):
    """The expiry a ChangeExpiryField's choice sets: ``access.ABSENT`` to keep it, None for never."""
    if choice == KEEP_EXPIRY:
        return access.ABSENT
    if choice == NEVER:
        return None
    return access.clean_expiry(expires_in_days=int(choice), now=now)


class ApiKeyRotateForm(forms.Form):
    """When the old secret stops working once a key has a new one, and (optionally) a new expiry.

    The page asks for confirmation (a dialog, or without JavaScript a page) before it posts
    ``confirmed``: a rotation breaks every program still using the old secret once the grace ends.
    """

    grace_period_hours = forms.TypedChoiceField(
        label="The old secret stops working",
        choices=GRACE_CHOICES,
        coerce=int,
        initial="24",
        help_text="Keep it working while you replace it in your programs; at most 7 days.",
    )
    expires_in = ChangeExpiryField(label="The key expires", required=False)
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        # Ids of its own: the key's page also holds the name-and-expiry form, whose expiry field has
        # the same name, and a label must point at its own field (WCAG 1.3.1, 4.1.2).
        kwargs.setdefault("auto_id", "id_rotate_%s")
        super().__init__(*args, **kwargs)

    def grace(self) -> datetime.timedelta:
        return datetime.timedelta(hours=self.cleaned_data["grace_period_hours"])

    def expires_at(self):
        return changed_expiry(self.cleaned_data.get("expires_in") or KEEP_EXPIRY)

    def consequence(self) -> str:
        """What stops working, in words, for the confirmation."""
        hours = self.cleaned_data["grace_period_hours"]
        when = "at once" if not hours else dict(GRACE_CHOICES)[str(hours)].lower()
        return (f"The current secret stops working {when}: every program that uses it is then refused "
                "until it is given the new secret, which is shown once.")


class ApiKeySettingsForm(forms.Form):
    """A key's name and expiry, changed by its owner."""

    name = forms.CharField(
        label="Name", required=False, max_length=NAME_MAX_LENGTH,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
        error_messages={"max_length": "Keep the name to %(limit_value)d characters or fewer (it has %(show_value)d)."},
    )
    expires_in = ChangeExpiryField(required=False, help_text="Counted from now. A revoked or expired key keeps its own.")

    def expires_at(self):
        return changed_expiry(self.cleaned_data.get("expires_in") or KEEP_EXPIRY)


STATE_FILTERS = [("all", "All keys"), ("active", "Active"), ("attention", "Needs attention"),
                 ("expired", "Expired"), ("revoked", "Revoked")]
SORTS = [("-created_at", "Newest first"), ("created_at", "Oldest first"), ("name", "Name"),
         ("-last_used_at", "Recently used"), ("-total_uses", "Most used"), ("expires_at", "Expiring soonest")]


class KeyListFilterForm(forms.Form):
    """Search, filter and sort the key list (a GET form: the URL keeps the view, no secret in it)."""

    q = forms.CharField(label="Search", required=False, max_length=100,
                        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Name or key id",
                                                      "autocomplete": "off"}))
    state = forms.ChoiceField(label="Show", choices=STATE_FILTERS, required=False, initial="all")
    sort = forms.ChoiceField(label="Sort", choices=SORTS, required=False, initial="-created_at")
    hide_revoked = forms.BooleanField(label="Hide revoked", required=False)

    def value(self, name: str):
        """The cleaned value, or the field's initial when the form is invalid or the field absent."""
        cleaned = getattr(self, "cleaned_data", {})
        return cleaned.get(name) or self.fields[name].initial


class BulkRevokeForm(forms.Form):
    """The keys ticked on the list; ``confirmed`` once the person saw which (dialog or page)."""

    ids = forms.TypedMultipleChoiceField(label="Keys", choices=[], coerce=str,
                                         error_messages={"required": "Tick the keys to revoke first."})
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.keys = list(ApiKey.objects.owned_by(owner).filter(revoked_at__isnull=True))
        field = self.fields["ids"]
        assert isinstance(field, forms.TypedMultipleChoiceField)  # declared so above
        field.choices = [(str(api_key.pk), str(api_key)) for api_key in self.keys]
        field.error_messages["invalid_choice"] = "One of these keys is no longer there or already revoked: reload the page."

    def chosen(self) -> list[ApiKey]:
        ids = set(self.cleaned_data["ids"])
        return [api_key for api_key in self.keys if str(api_key.pk) in ids]
