"""The OpenAPI schema covers the whole API, and the live server keeps to it (schemathesis)."""

import os
import re
import subprocess
import sys

import pytest
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import EndpointEnumerator

from apikeys.services import create_api_key

pytestmark = pytest.mark.django_db

SCHEMA = "/api/v1/schema/"


@pytest.fixture
def schema(client):
    response = client.get(SCHEMA, {"format": "json"})
    assert response.status_code == 200
    return response.json()


def _api_routes(patterns=None, prefix=""):
    """Every REST framework route of the URLconf under /api/, as OpenAPI path templates.

    Plain Django views there (e.g. the "flow id required" 404 of /api/v1/run/) are no operations.
    """
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _api_routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern) and route.startswith("api/") and hasattr(pattern.callback, "cls"):
            yield EndpointEnumerator().get_path_from_regex(route)


def test_the_schema_is_openapi_3_and_needs_no_credentials(client):
    response = client.get(SCHEMA, {"format": "json"}, HTTP_X_API_KEY="lfsk_not-a-key")
    assert response.status_code == 200 and response.json()["openapi"].startswith("3.")
    assert client.get(SCHEMA).status_code == 200  # YAML by default


def test_every_api_route_is_in_the_schema(schema):
    documented = set(schema["paths"])
    undocumented = {route for route in _api_routes() if route not in documented}
    assert undocumented <= {SCHEMA, "/api/docs/"}, undocumented
    assert {"/api/v1/api_key/", "/api/v1/api_key/{key_id}", "/api/v1/api_key/{key_id}/rotate",
            "/api/v1/api_key/revoke-leaked", "/api/v1/users/whoami"} <= documented


def test_api_key_header_and_query_security_schemes(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["ApiKeyHeader"] == {**schemes["ApiKeyHeader"], "type": "apiKey", "in": "header", "name": "x-api-key"}
    assert schemes["ApiKeyQuery"] == {**schemes["ApiKeyQuery"], "type": "apiKey", "in": "query", "name": "x-api-key"}
    whoami = schema["paths"]["/api/v1/users/whoami"]["get"]
    assert {"ApiKeyHeader": []} in whoami["security"] and {"ApiKeyQuery": []} in whoami["security"]


def test_key_management_is_documented_as_session_only_and_leak_reports_as_open(schema):
    for path in ("/api/v1/api_key/", "/api/v1/api_key/{key_id}", "/api/v1/api_key/{key_id}/rotate"):
        for operation in schema["paths"][path].values():
            assert operation["security"] == [{"cookieAuth": []}]
    assert not schema["paths"]["/api/v1/api_key/revoke-leaked"]["post"].get("security")


def test_errors_are_documented_as_json_detail(schema):
    create = schema["paths"]["/api/v1/api_key/"]["post"]["responses"]
    assert {"200", "400", "403", "415", "422", "429"} <= set(create)
    assert create["422"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert "Retry-After" in create["429"]["headers"]
    assert schema["components"]["schemas"]["Error"]["required"] == ["detail"]


def test_the_docs_page_loads_swagger_ui_from_this_server_only(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    body = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', body)
    assert assets and all(url.startswith("/") for url in assets), assets
    assert "<script>" not in body  # the start-up script is a file of its own (CSP: no inline scripts)
    for url in assets:
        assert client.get(url).status_code == 200, url
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]


# Schemathesis against the live server: no 5xx, and every answer matches the schema.

REQUIRED_CHECKS = ",".join([
    "not_a_server_error", "status_code_conformance", "content_type_conformance",
    "response_headers_conformance", "response_schema_conformance",
])
# On the key routes, everything except: strings with NUL are refused (not in the schema's
# words), the cookie given as a header looks like "no auth" to it, and DELETE revokes a key
# that stays listed, by design.
KEY_ROUTE_EXCLUDED_CHECKS = "positive_data_acceptance,negative_data_rejection,use_after_free"


def _schemathesis(live_server, tmp_path, *args):
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{live_server.url}{SCHEMA}?format=json",
        "--workers", os.environ.get("SCHEMATHESIS_WORKERS", "2"), "--max-examples", os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25"),
        "--seed", os.environ.get("SCHEMATHESIS_SEED", "20261127"), "--no-color", "--request-timeout", "20",
        *args,
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-12000:]
    assert "Tested:" in output


@pytest.fixture
def live_settings(settings):
    # The fuzzer sends many bad keys and leak reports from one address on purpose.
    settings.API_KEY_FAILED_AUTH_RATE = ""
    settings.API_KEY_LEAK_REPORT_RATE = ""
    settings.API_KEY_RATE = ""
    return settings


@pytest.mark.django_db(transaction=True)
def test_schemathesis_finds_no_error_on_the_key_authenticated_routes(live_server, live_settings, tmp_path, user):
    _, raw = create_api_key(user=user, name="schemathesis")
    _schemathesis(live_server, tmp_path, "--header", f"x-api-key: {raw}",
                  "--exclude-path-regex", "^/api/v1/api_key/", "--checks", REQUIRED_CHECKS)


@pytest.mark.django_db(transaction=True)
def test_schemathesis_finds_no_error_on_the_key_management_routes(live_server, live_settings, tmp_path, user):
    browser = Client()
    browser.force_login(user)
    token = _get_new_csrf_string()
    cookie = f"sessionid={browser.cookies['sessionid'].value}; csrftoken={token}"
    _schemathesis(live_server, tmp_path, "--header", f"Cookie: {cookie}", "--header", f"X-CSRFToken: {token}",
                  "--include-path-regex", "^/api/v1/api_key/",
                  "--checks", "all", "--exclude-checks", KEY_ROUTE_EXCLUDED_CHECKS)
