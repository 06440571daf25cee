"""How the API key looks in the OpenAPI schema: an ``x-api-key`` header or query parameter."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from .authentication import QUERY_PARAMETER


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "apikeys.authentication.ApiKeyAuthentication"
    name = ["ApiKeyHeader", "ApiKeyQuery"]

    def get_security_definition(self, auto_schema):
        return [
            {"type": "apiKey", "in": "header", "name": "x-api-key",
             "description": "An API key (lfsk_...), sent in the x-api-key header."},
            {"type": "apiKey", "in": "query", "name": QUERY_PARAMETER,
             "description": "An API key in the query string; the header is preferred (URLs end up in logs)."},
        ]

    def get_security_requirement(self, auto_schema):
        # Either one: the header or the query parameter.
        return [{"ApiKeyHeader": []}, {"ApiKeyQuery": []}]


class BearerApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "apikeys.authentication.BearerApiKeyAuthentication"
    name = "ApiKeyBearer"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "An API key (lfsk_...) as a Bearer token (OpenAI's and MCP's clients send it so)."}
