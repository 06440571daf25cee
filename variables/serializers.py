"""Request and response shapes of the variables API (Langflow's VariableCreate/Update/Read)."""

from rest_framework import serializers

from .models import Variable, VariableType


class VariableReadSerializer(serializers.ModelSerializer):
    """Langflow's VariableRead: a Credential's ``value`` is always null (it is never shown again)."""

    value = serializers.SerializerMethodField(help_text="A Generic's value; null for a Credential.")

    class Meta:
        model = Variable
        fields = ["id", "name", "type", "value", "default_fields", "created_at", "updated_at"]

    def get_value(self, variable) -> str | None:
        return None if variable.is_credential else variable.value


class _VariableInput(serializers.Serializer):
    name = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=255)
    value = serializers.CharField(allow_blank=True, trim_whitespace=False)
    type = serializers.ChoiceField(choices=VariableType.values, required=False, allow_null=True,
                                   help_text="Credential (the default: encrypted, never shown again) or Generic.")
    default_fields = serializers.ListField(child=serializers.CharField(max_length=255), required=False,
                                           allow_null=True, max_length=100,
                                           help_text="The fields this variable applies to, e.g. ['api_key'].")


class VariableCreateSerializer(_VariableInput):
    """Langflow's VariableCreate; its other fields (category, created_at...) are accepted and ignored."""

    name = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=255, required=False)
    value = serializers.CharField(allow_blank=True, trim_whitespace=False, required=False)


class VariableUpdateSerializer(_VariableInput):
    """Langflow's VariableUpdate: only the fields sent change (``id`` must be the one in the URL if sent)."""

    id = serializers.UUIDField(required=False)
    name = serializers.CharField(trim_whitespace=False, max_length=255, required=False, allow_null=True)
    value = serializers.CharField(trim_whitespace=False, required=False, allow_null=True)
