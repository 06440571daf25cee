"""The key-management API's JSON, with Langflow's field names."""

from typing import TYPE_CHECKING, Any, NoReturn

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from . import access
from .models import PERMISSIONS, ApiKey
from .services import MAX_ROTATION_GRACE

PERMISSION_CHOICES = [str(permission) for permission in PERMISSIONS]
ACCESS_FIELDS = ("all_flows", "flow_ids", "permissions", "allowed_ips")


class _BlankAsNullChoiceField(serializers.ChoiceField):
    def to_representation(self, value):
        return super().to_representation(value) if value else None


class ApiKeySerializer(serializers.ModelSerializer):
    """A key as listed: masked, never its secret."""

    api_key = serializers.CharField(source="masked", read_only=True, help_text="The masked key.")
    user_id = serializers.UUIDField(read_only=True)
    is_active = serializers.BooleanField(source="is_usable", read_only=True, help_text="Neither revoked nor expired.")
    state = serializers.ChoiceField(
        choices=["active", "expired", "revoked", "reported leaked"], read_only=True
    )
    revoked_by = _BlankAsNullChoiceField(
        choices=ApiKey.RevokedBy.choices, read_only=True, allow_null=True,
        help_text="Who revoked the key: its owner, an administrator, or a leak report; null while not revoked.",
    )
    previous_key_valid_until = serializers.DateTimeField(
        source="previous_valid_until", read_only=True, allow_null=True,
        help_text="Until when the secret replaced by the last rotation still works.",
    )
    all_flows = serializers.BooleanField(read_only=True, help_text="The key may use every flow of its owner.")
    flow_ids = serializers.ListField(
        child=serializers.UUIDField(), read_only=True,
        help_text="When all_flows is false, the only flows the key may use (none when empty).",
    )
    permissions = serializers.ListField(child=serializers.ChoiceField(choices=PERMISSION_CHOICES), read_only=True)
    allowed_ips = serializers.ListField(
        child=serializers.CharField(), read_only=True,
        help_text="Networks the key may be used from (CIDR); empty: anywhere.",
    )

    class Meta:
        model = ApiKey
        fields = [
            "name", "last_used_at", "total_uses", "is_active", "expires_at", "id", "api_key", "user_id",
            "created_at", "state", "revoked_at", "revoked_by", "rotated_at", "previous_key_valid_until",
            "all_flows", "flow_ids", "permissions", "allowed_ips",
        ]
        read_only_fields = fields


class _RawKeyField(serializers.CharField):
    """The full key, from the serializer's context: it exists only in the response that made it."""

    def get_attribute(self, instance):
        return self.context["raw_key"]


class ApiKeyCreatedSerializer(ApiKeySerializer):
    """A key just created or rotated, with its full secret: the only time it is ever shown."""

    api_key = _RawKeyField(read_only=True, help_text="The full key. Shown in this response only: store it now.")


class ApiKeyListSerializer(serializers.Serializer):
    total_count = serializers.IntegerField()
    user_id = serializers.UUIDField()
    api_keys = ApiKeySerializer(many=True)


class _Unchecked:
    """A list entry passed on as given: apikeys.access.build_terms checks it, with its own messages.

    The field's type still describes the entry in the OpenAPI schema (a UUID, one of the
    permissions...).
    """

    if TYPE_CHECKING:  # provided by the serializer field this is mixed into
        def fail(self, key: str, **kwargs: Any) -> NoReturn: ...

    def to_internal_value(self, data):
        if isinstance(data, (dict, list)):
            self.fail("invalid")
        return str(data)


class _UncheckedUUID(_Unchecked, serializers.UUIDField):
    pass


class _UncheckedChoice(_Unchecked, serializers.ChoiceField):
    default_error_messages = {"invalid": "Expected a permission: run, read or write."}


class _UncheckedText(_Unchecked, serializers.CharField):
    pass


class ApiKeyAccessSerializer(serializers.Serializer):
    """A key's limits. Absent fields keep the key's values (context ``current``; a new key: full access).

    Context ``user``: the owner, whose flows alone ``flow_ids`` may name. ``validated_data``
    holds ``access``, a KeyAccess. Validated by apikeys.access.build_terms, as everywhere else.
    """

    all_flows = serializers.BooleanField(
        required=False, help_text="true: every flow of yours. Sending flow_ids alone limits the key to them.",
    )
    flow_ids = serializers.ListField(
        child=_UncheckedUUID(), required=False,
        help_text=f"Ids of your flows the key is limited to (at most {access.MAX_SCOPED_FLOWS}); it gets 404 for "
                  f"every other flow.",
    )
    permissions = serializers.ListField(
        child=_UncheckedChoice(choices=PERMISSION_CHOICES), required=False,
        help_text="run (the run endpoints), read (list and read flows), write (create, change, delete flows).",
    )
    allowed_ips = serializers.ListField(
        child=_UncheckedText(), required=False,
        help_text=f"IPv4/IPv6 addresses and CIDR ranges the key may be used from (at most "
                  f"{access.MAX_ALLOWED_IPS}); empty: anywhere.",
    )

    def validate(self, attrs):
        raw = {field: attrs.pop(field) for field in (*ACCESS_FIELDS, "expires_at") if field in attrs}
        try:
            terms = access.build_terms(self.context["user"], current=self.context.get("current"), **raw)
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.message_dict) from None
        if "expires_at" in raw:
            attrs["expires_at"] = terms.expires_at
        return {**attrs, "access": terms.access}


class ApiKeyCreateSerializer(ApiKeyAccessSerializer):
    """A new key: a name, an expiry, and its limits (by default every flow, every permission, anywhere)."""

    name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    expires_at = serializers.DateTimeField(
        required=False, allow_null=True, default=None,
        help_text="When the key stops working; null or absent: never. At most ten years ahead.",
    )


class ApiKeyRotateSerializer(serializers.Serializer):
    grace_period_hours = serializers.IntegerField(
        min_value=0, max_value=int(MAX_ROTATION_GRACE.total_seconds() // 3600), required=False, default=0,
        help_text="How long the old secret keeps working: 0 (stops at once) to 168 hours (7 days).",
    )


class LeakReportSerializer(serializers.Serializer):
    api_key = serializers.CharField(max_length=200, help_text="The full key that was exposed.")


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()
