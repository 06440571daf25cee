"""The key-management API's JSON, with Langflow's field names (see shared/LANGFLOW_API.md)."""

from django.utils import timezone
from rest_framework import serializers

from .models import ApiKey
from .services import MAX_LIFETIME, MAX_ROTATION_GRACE


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

    class Meta:
        model = ApiKey
        fields = [
            "name", "last_used_at", "total_uses", "is_active", "expires_at", "id", "api_key", "user_id",
            "created_at", "state", "revoked_at", "revoked_by", "rotated_at", "previous_key_valid_until",
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


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    expires_at = serializers.DateTimeField(
        required=False, allow_null=True, default=None,
        help_text="When the key stops working; null or absent: never. At most ten years ahead.",
    )

    def validate_expires_at(self, value):
        if value is None:
            return None
        now = timezone.now()
        if value <= now:
            raise serializers.ValidationError("must be in the future.")
        if value > now + MAX_LIFETIME:
            raise serializers.ValidationError("must be at most ten years ahead.")
        return value


class ApiKeyRotateSerializer(serializers.Serializer):
    grace_period_hours = serializers.IntegerField(
        min_value=0, max_value=int(MAX_ROTATION_GRACE.total_seconds() // 3600), required=False, default=0,
        help_text="How long the old secret keeps working: 0 (stops at once) to 168 hours (7 days).",
    )


class LeakReportSerializer(serializers.Serializer):
    api_key = serializers.CharField(max_length=200, help_text="The full key that was exposed.")


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()
