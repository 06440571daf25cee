"""Request and response shapes of the flows API (Langflow's field names)."""

from typing import Any

from rest_framework import serializers

from .engine.run import INPUT_TYPES, OUTPUT_TYPES
from .engine.structure import structure_errors
from .models import validate_endpoint_name

MAX_PAGE = 1_000_000_000
MAX_PAGE_SIZE = 1000

# What Langflow's FlowRead has and this server has no use for, answered with Langflow's defaults
# so its clients find every field they expect.
LANGFLOW_CONSTANT_FIELDS: dict[str, Any] = {
    "is_component": False, "folder_id": None, "tags": [], "icon": None, "icon_bg_color": None,
    "gradient": None, "locked": False, "mcp_enabled": False, "webhook": False, "access_type": "PRIVATE",
}


class FlowSerializer(serializers.Serializer):
    """A flow as Langflow answers it; ``header_flows`` (``with_data=False``) leaves the graph out.

    The declared fields describe the answer in the OpenAPI schema; ``to_representation`` builds it.
    """

    id = serializers.UUIDField()
    name = serializers.CharField()
    description = serializers.CharField()
    endpoint_name = serializers.CharField(allow_null=True)
    user_id = serializers.UUIDField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    # Langflow's field name, so it stays, shadowing Serializer.data (this serializer's output is
    # built by to_representation; ``.data`` is not read from an instance as a field).
    data = serializers.JSONField(  # type: ignore[assignment]
        required=False, help_text="The graph: nodes and edges (left out with header_flows).")
    is_component = serializers.BooleanField()
    folder_id = serializers.UUIDField(allow_null=True)
    tags = serializers.ListField(child=serializers.CharField())
    icon = serializers.CharField(allow_null=True)
    icon_bg_color = serializers.CharField(allow_null=True)
    gradient = serializers.CharField(allow_null=True)
    locked = serializers.BooleanField()
    mcp_enabled = serializers.BooleanField()
    webhook = serializers.BooleanField()
    access_type = serializers.CharField()
    moved_secrets = serializers.ListField(
        child=serializers.DictField(child=serializers.CharField()), required=False,
        help_text="Only when this request saved the flow with literal keys: where each was "
                  "(node_id, field) and the Credential variable it now loads (variable).")

    def __init__(self, *args, with_data: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.with_data = with_data

    def to_representation(self, flow):
        body = {
            "id": str(flow.pk),
            "name": flow.name,
            "description": flow.description,
            "endpoint_name": flow.endpoint_name,
            "user_id": str(flow.owner_id),
            "created_at": flow.created_at.isoformat(),
            "updated_at": flow.updated_at.isoformat(),
            **LANGFLOW_CONSTANT_FIELDS,
        }
        if self.with_data:
            body["data"] = flow.data
        if getattr(flow, "moved_secrets", None):  # set by a save that moved keys into variables
            body["moved_secrets"] = flow.moved_secrets
        return body


class FlowInputSerializer(serializers.Serializer):
    """The fields a client may set. Langflow's other fields (tags, folder_id...) are accepted and ignored."""

    name = serializers.CharField(max_length=255)
    description = serializers.CharField(required=False, allow_blank=True, allow_null=True, trim_whitespace=False)
    endpoint_name = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, max_length=255, trim_whitespace=False,
        validators=[validate_endpoint_name],
    )
    data = serializers.JSONField(required=False, allow_null=True)  # type: ignore[assignment]  # Langflow's field name

    def validate_data(self, value):
        if value is None:
            return None
        problems = structure_errors(value)
        if problems:
            raise serializers.ValidationError(problems)
        return value

    def validate_endpoint_name(self, value):
        return value or None


class FlowListQuerySerializer(serializers.Serializer):
    """The query parameters of ``GET /api/v1/flows/`` that langflow-sdk sends."""

    get_all = serializers.BooleanField(default=True)
    # Bounded so that the row offset, (page - 1) * size, fits the databases' 64-bit integers.
    page = serializers.IntegerField(min_value=1, max_value=MAX_PAGE, default=1)
    size = serializers.IntegerField(min_value=1, max_value=MAX_PAGE_SIZE, default=50)
    header_flows = serializers.BooleanField(default=False)
    components_only = serializers.BooleanField(default=False)
    remove_example_flows = serializers.BooleanField(default=False)
    folder_id = serializers.UUIDField(required=False, allow_null=True)


class RunRequestSerializer(serializers.Serializer):
    """Langflow's run body, and the older ``{"inputs": {...}, "tweaks": {...}}``."""

    input_value = serializers.CharField(required=False, allow_null=True, allow_blank=True, trim_whitespace=False)
    input_type = serializers.ChoiceField(INPUT_TYPES, default="chat")
    output_type = serializers.ChoiceField(OUTPUT_TYPES, default="chat")
    output_component = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    tweaks = serializers.DictField(required=False, allow_null=True)
    inputs = serializers.DictField(required=False, allow_null=True)
    session_id = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=255)
    stream = serializers.BooleanField(required=False, default=False)


def _plain_value_test(field: serializers.Field):
    """A test that a value of ``field`` needs none of its work: the field would give it back as it
    is (an object: as a copy). Read from the field's own declaration, so the two cannot drift."""
    allow_null = field.allow_null
    if isinstance(field, serializers.ChoiceField):
        listed = frozenset(field.choices)
        return lambda value: (value is None and allow_null) or (type(value) is str and value in listed)
    if isinstance(field, serializers.CharField):
        longest, trimmed, allow_blank = field.max_length, field.trim_whitespace, field.allow_blank
        # ASCII and no NUL: nothing the field's validators refuse (NUL, surrogates) or it converts.
        return lambda value: (value is None and allow_null) or (
            type(value) is str and value.isascii() and "\x00" not in value
            and (longest is None or len(value) <= longest)
            and (allow_blank or value != "")
            and (not trimmed or value == value.strip()))
    if isinstance(field, serializers.DictField):
        return lambda value: (value is None and allow_null) or type(value) is dict
    if isinstance(field, serializers.BooleanField):
        return lambda value: value is True or value is False
    return lambda value: False  # a field of another kind: always the serializer's way


# Each field of the run body: (a test that a value is plainly valid, its default or ``empty``).
_RUN_FIELDS = {name: (_plain_value_test(field), field.default)
               for name, field in RunRequestSerializer().fields.items()}
_RUN_DEFAULTS = {name: default for name, (_, default) in _RUN_FIELDS.items() if default is not serializers.empty}


def run_request_fields(data: Any) -> dict[str, Any]:
    """The fields of a run body, as ``RunRequestSerializer`` validates them (its defaults filled in).

    A body every field of which is plainly valid (texts with no character the serializer refuses
    or trims, a choice spelled as it is listed, an object or null, a real boolean) comes out as the
    serializer would make it, without the serializer: on every run, building its fields cost more
    than the echo flow's whole run. Anything else (a number as a text, a padded id, a surrogate,
    a wrong type) goes through ``RunRequestSerializer``, which makes it or says what is wrong;
    tests hold the two to the same result.
    """
    if type(data) is dict:
        fields: dict[str, Any] = dict(_RUN_DEFAULTS)
        for name, value in data.items():
            known = _RUN_FIELDS.get(name)
            if known is None:
                continue  # not a field of the body: ignored, as the serializer ignores it
            if not known[0](value):
                break
            fields[name] = dict(value) if type(value) is dict else value
        else:
            return fields
    serializer = RunRequestSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class StreamQuerySerializer(serializers.Serializer):
    stream = serializers.BooleanField(default=False)


def stream_asked(query_params) -> bool:
    """``?stream=...`` as ``StreamQuerySerializer`` reads it; a spelling of true or false (the
    usual case) is read without building the serializer, anything else goes through it."""
    value = query_params.get("stream")
    if value is None:
        return False
    if value in serializers.BooleanField.TRUE_VALUES:
        return True
    if value in serializers.BooleanField.FALSE_VALUES:
        return False
    serializer = StreamQuerySerializer(data=query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data["stream"]


class FlowUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A Langflow export: one flow, a list, or {\"flows\": [...]}.")


class FlowDeletedSerializer(serializers.Serializer):
    message = serializers.CharField()


class RunResponseSerializer(serializers.Serializer):
    """Langflow's run answer; read ``outputs[0].outputs[i].results.message.text``."""

    session_id = serializers.CharField()
    outputs = serializers.ListField(child=serializers.DictField())


class ProcessResultSerializer(serializers.Serializer):
    text = serializers.CharField(help_text="The first output's text.")
    outputs = serializers.DictField(child=serializers.CharField(), help_text="Each output's text by node id.")


class ProcessResponseSerializer(serializers.Serializer):
    result = ProcessResultSerializer()
    session_id = serializers.CharField()
