"""OpenAPI schema generation (drf-spectacular): the error answers every route can give.

Every API error is JSON ``{"detail": "..."}`` (core.api), with the status codes
listed here. Documenting them on every operation lets clients, and schemathesis in CI,
check each answer against the schema.
"""

from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers

ERROR_DESCRIPTIONS = {
    "400": "Malformed request: a body that is not JSON or is nested too deeply, or too many parameters.",
    "403": "Missing, invalid or not allowed credentials (API key or session).",
    "404": "Not found (another user's object answers the same).",
    "413": "The body is too large.",
    "415": "The body is not JSON.",
    "422": "Invalid fields; `errors` maps each field to its messages.",
    "429": "Rate limited; retry after `Retry-After` seconds.",
}


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, in one sentence.")
    # DRF's metaclass takes declared fields off the class, so this does not hide Serializer.errors.
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.JSONField(), required=False, help_text="Field errors (422 only)."
    )


class ApiAutoSchema(AutoSchema):
    """The default AutoSchema, plus the JSON error responses that apply to each operation."""

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        responses = operation.setdefault("responses", {})
        for code in self._error_codes(operation):
            if code not in responses:
                responses[code] = self._error_response(code)
        return operation

    def _error_codes(self, operation) -> list[str]:
        authenticators = self.view.get_authenticators()
        codes = ["400"]  # any request can send more than DATA_UPLOAD_MAX_NUMBER_FIELDS parameters
        if "requestBody" in operation or self.method in ("POST", "PUT", "PATCH"):
            codes += ["413", "415", "422"]
        elif any(parameter.get("in") == "query" for parameter in operation.get("parameters", [])):
            codes.append("422")
        if authenticators:
            codes.append("403")
        if "{" in self.path:
            codes.append("404")
        if self.view.get_throttles() or any(getattr(a, "may_throttle", False) for a in authenticators):
            codes.append("429")
        return codes

    def _error_response(self, code: str) -> dict:
        response = self._get_response_for_code(ErrorSerializer, code)
        response["description"] = ERROR_DESCRIPTIONS[code]
        if code == "429":
            response["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}
        return response


class WhoAmISerializer(serializers.Serializer):
    id = serializers.UUIDField()
    username = serializers.CharField()
    is_superuser = serializers.BooleanField()


class WhoAmISchema(OpenApiViewExtension):
    """users.api.WhoAmIView answers a fixed shape; describe it here, beside the other schema code."""

    target_class = "users.api.WhoAmIView"

    def view_replacement(self):
        view = self.target_class
        assert isinstance(view, type)  # drf-spectacular has imported it before it asks for a replacement
        fixed = type("Fixed", (view,), {})
        return extend_schema_view(get=extend_schema(operation_id="whoami", responses=WhoAmISerializer,
                                                    summary="Who the API key (or session) acts as."))(fixed)
