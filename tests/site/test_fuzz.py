"""Hostile requests, generated (hypothesis): whatever a client sends, the answer is never a 5xx,
and on /api/ every refusal is JSON ``{"detail": ...}``.

Schemathesis (tests/site/test_openapi.py) sends what the schema describes; these send what it
does not: any method on any route, query strings with invalid escapes or more than 1,000
parameters, bodies nested thousands deep, numbers past 64 bits or a float, invalid UTF-8, NaN,
NUL, multipart forms with too many files or fields or a broken boundary, under any content type
and any credentials. Each case is one request through the whole stack, in process.
``HYPOTHESIS_MAX_EXAMPLES`` raises the number of examples, ``HYPOTHESIS_RANDOM=1`` draws new ones.
"""

import json
import os
import re
import uuid
from urllib.parse import quote

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from apikeys.access import KeyAccess
from apikeys.services import create_api_key
from flows.services import import_flows
from tests.flows.conftest import closed_port, load_fixture

pytestmark = pytest.mark.django_db

MAX_EXAMPLES = int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "120"))
# The same examples at every run (CI), unless HYPOTHESIS_RANDOM is set to hunt for new ones.
FUZZ = hypothesis_settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize="HYPOTHESIS_RANDOM" not in os.environ,
                           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                                  HealthCheck.data_too_large])
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]


def _routes(patterns=None, prefix=""):
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern) and not route.startswith(("admin/", "static/")):
            yield "/" + route


ROUTES = sorted(set(_routes()))
API_ROUTES = [route for route in ROUTES if route.startswith("/api/")]
PAGE_ROUTES = [route for route in ROUTES if not route.startswith("/api/")]


@pytest.fixture
def world(user, other_user, settings):
    """Two users, a flow each, keys of every kind, and a signed-in browser; no model is reachable."""
    settings.OPENAI_BASE_URL = f"http://127.0.0.1:{closed_port()}/v1"
    settings.MODEL_ALLOWED_BASE_URLS = []
    settings.API_KEY_FAILED_AUTH_RATE = ""  # every refusal takes its full path
    settings.API_KEY_LEAK_REPORT_RATE = ""
    [flow] = import_flows(user=user, payload=load_fixture("echo.json"))
    [theirs] = import_flows(user=other_user, payload=load_fixture("basic_prompting.json"))
    key, raw = create_api_key(user=user, name="full")
    _, limited = create_api_key(user=user, name="limited", access=KeyAccess(
        all_flows=False, flow_ids=(str(flow.pk),), permissions=("run",), allowed_ips=("10.0.0.0/8",)))
    _, revoked = create_api_key(user=user, name="revoked")
    from apikeys.services import revoke_api_key

    revoke_api_key(create_api_key(user=user)[0])
    browser = Client(raise_request_exception=False)
    browser.force_login(user)
    return {
        "flow": flow, "theirs": theirs, "key": key, "raw": raw, "limited": limited, "revoked": revoked,
        "browser": browser, "anonymous": Client(raise_request_exception=False),
    }


# --- Strategies ---------------------------------------------------------------------------------

def nested(depth: int, opener: str = "[", closer: str = "]", leaf: str = "1") -> str:
    return opener * depth + leaf + closer * depth


json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)
# Field names the views read, so that generated objects reach the serializers and services.
known_fields = st.sampled_from([
    "name", "description", "endpoint_name", "data", "nodes", "edges", "api_key", "expires_at", "flow_ids",
    "permissions", "allowed_ips", "all_flows", "grace_period_hours", "input_value", "input_type", "output_type",
    "output_component", "tweaks", "inputs", "session_id", "stream", "flows", "page", "size",
])
objects_of_known_fields = st.dictionaries(known_fields, json_values, max_size=6)

raw_json_texts = st.one_of(
    st.builds(lambda depth: nested(depth), st.integers(0, 3000)),
    st.builds(lambda depth, key: nested(depth, '{"' + key + '": ', "}"), st.integers(0, 3000), known_fields),
    st.builds(lambda depth: '{"name": "x", "data": {"nodes": [], "edges": [], "deep": ' + nested(depth) + "}}",
              st.integers(0, 1500)),
    st.sampled_from([
        "NaN", "Infinity", '{"name": -Infinity}', '{"a": 1e400}', '{"page": 1e309}', '{"api_key": "\\ud800"}',
        '{"name": "a\\u0000b"}', '{"name": "\\udfff\\ud800"}', "9" * 5000, '{"grace_period_hours": ' + "9" * 40 + "}",
        '{"a":', "[", "}", "", " ", "\ufeff{}", "null", "[]", '"text"', '{"__proto__": {}}',
        '{"api_key": ' + "9" * 4400 + "}", '{"expires_at": "99999-12-31T00:00:00Z"}',
        '{"expires_at": "2027-13-45T99:99:99Z"}', '{"flow_ids": ["' + "f" * 5000 + '"]}',
        '{"allowed_ips": ["0.0.0.0/0", "::/0", "fe80::1%eth0", "10.0.0.0/33"]}',
    ]),
    st.builds(json.dumps, objects_of_known_fields),
    st.builds(json.dumps, json_values),
)
raw_bytes = st.one_of(
    st.binary(max_size=300),
    st.sampled_from([b"\xff\xfe\x00{", b'{"name": "\xff"}', b"\xef\xbb\xbf{\"name\": 1}", b"\x00" * 50]),
    raw_json_texts.map(lambda text: text.encode("utf-8", "surrogatepass")),
)


@st.composite
def multipart_bodies(draw):
    files = draw(st.integers(0, 105))
    fields = draw(st.sampled_from([0, 1, 5, 999, 1001]))
    data = {f"field{number}": draw(st.text(max_size=5)) for number in range(fields)}
    for number in range(files):
        data[f"file{number}" if number else "file"] = SimpleUploadedFile(
            f"{number}.json", draw(st.sampled_from([b"{}", b"[]", b"\xff", nested(900).encode(), b"x"])))
    return encode_multipart(BOUNDARY, data), draw(st.sampled_from([
        MULTIPART_CONTENT, "multipart/form-data", "multipart/form-data; boundary=", "multipart/form-data; boundary=x",
        "multipart/form-data; boundary=" + "a" * 300,
    ]))


bodies = st.one_of(
    st.tuples(raw_bytes, st.sampled_from([
        "application/json", "application/json; charset=latin-1", "text/plain", "application/x-www-form-urlencoded",
        "", "application/octet-stream", "application/json; charset=utf-16", "*/*", "application/x-ndjson",
    ])),
    multipart_bodies(),
    st.just((b"", "")),
)

query_names = st.one_of(
    st.sampled_from(["x-api-key", "x%2Dapi-key", "%78-api-key", "page", "size", "get_all", "header_flows", "stream",
                     "folder_id", "format", "components_only", "next", "%ff", "%", "%zz", "a+b", "=", "&", ";"]),
    st.text(max_size=10).map(lambda text: quote(text, safe="")),
)
query_values = st.one_of(
    st.sampled_from(["", "1", "0", "-1", "true", "maybe", str(2**63), str(2**64 + 5), "9" * 50, "9" * 5000, "1e400",
                     "NaN", "%00", "%ff%fe", "%", "%zz", "lfsk_", "json", "yaml", "openapi", "../"]),
    st.text(max_size=20).map(lambda text: quote(text, safe="")),
)


@st.composite
def query_strings(draw):
    if draw(st.integers(0, 9)) == 0:  # past DATA_UPLOAD_MAX_NUMBER_FIELDS (1,000)
        return "&".join(f"p{number}=1" for number in range(draw(st.integers(995, 1010))))
    pairs = draw(st.lists(st.tuples(query_names, query_values), max_size=6))
    return "&".join(f"{name}={value}" for name, value in pairs)


path_values = st.one_of(
    st.sampled_from(["{flow}", "{theirs}", "{key_id}", "echo", "{flow_upper}", "{flow_hex}", "{random}"]),
    st.sampled_from(["%00", "%ff", "..", "%2e%2e", "a" * 300, "echo%0A", "ECHO", "%20", "{{x}}", "lfsk_x"]),
    st.text(min_size=1, max_size=20).map(lambda text: quote(text, safe="")),
)


def concrete(route: str, draw, world) -> str:
    def fill(match):
        value = draw(path_values)
        return value.format(
            flow=world["flow"].pk, theirs=world["theirs"].pk, key_id=world["key"].pk, random=uuid.uuid4(),
            flow_upper=str(world["flow"].pk).upper(), flow_hex=world["flow"].pk.hex,
        ) if "{" in value and value != "{{x}}" else value
    return re.sub(r"<(?:\w+:)?\w+>", fill, route)


credentials = st.sampled_from(["none", "header", "query", "limited", "revoked", "malformed", "session", "both"])


def send(world, draw, route: str, *, page: bool = False):
    path = concrete(route, draw, world)
    method = draw(st.sampled_from(["GET", "POST"] if page else METHODS))
    query = draw(query_strings())
    body, content_type = draw(bodies)
    who = draw(credentials)
    headers = {}
    client = world["anonymous"]
    if who in ("header", "both"):
        headers["HTTP_X_API_KEY"] = world["raw"]
    if who == "limited":
        headers["HTTP_X_API_KEY"] = world["limited"]
    if who == "revoked":
        headers["HTTP_X_API_KEY"] = world["revoked"]
    if who == "malformed":
        headers["HTTP_X_API_KEY"] = draw(st.sampled_from(["", " ", "lfsk_", "\x00", "x" * 5000, world["raw"] + " "]))
    if who == "query":
        query = f"{query}&x-api-key={quote(world['raw'])}" if query else f"x-api-key={quote(world['raw'])}"
    if who in ("session", "both") or page:
        client = world["browser"]
    if draw(st.booleans()):
        headers["HTTP_ACCEPT"] = draw(st.sampled_from(["application/json", "text/html", "*/*", "application/xml",
                                                       "text/event-stream", "application/vnd.oai.openapi"]))
    url = f"{path}?{query}" if query else path
    response = client.generic(method, url, body, content_type=content_type, **headers)
    return method, url, response


def assert_no_server_error(method, url, response):
    assert response.status_code < 500, (method, url[:300], response.status_code, _text(response)[:500])


def _text(response) -> str:
    if response.streaming:
        return "<stream>"
    return response.content.decode("utf-8", "replace")


def assert_api_refusal_is_json(method, url, response):
    if response.status_code < 400 or method == "HEAD":
        return
    assert response["Content-Type"].startswith("application/json"), (method, url[:300], response["Content-Type"])
    body = json.loads(response.content)
    if url.startswith("/api/v1/responses"):  # OpenAI's error shape there, for the openai package
        body = body.get("error") if isinstance(body, dict) else None
        assert isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"], (method, url[:300], body)
        return
    assert isinstance(body, dict) and isinstance(body.get("detail"), str) and body["detail"], (method, url[:300], body)


# --- The fuzzers ---------------------------------------------------------------------------------

@FUZZ
@given(data=st.data())
def test_no_api_request_gets_a_server_error_and_every_refusal_is_json(world, data):
    route = data.draw(st.sampled_from(API_ROUTES))
    method, url, response = send(world, data.draw, route)
    assert_no_server_error(method, url, response)
    assert_api_refusal_is_json(method, url, response)


@FUZZ
@given(data=st.data(), route=st.sampled_from(["/api/v1/api_key/", "/api/v1/api_key/revoke-leaked", "/api/v1/flows/",
                                              "/api/v1/flows/upload/", "/api/v1/run/<flow_ref>",
                                              "/api/v1/process/<flow_ref>", "/api/v1/flows/<str:flow_id>",
                                              "/api/v1/api_key/<uuid:key_id>", "/api/v1/api_key/<uuid:key_id>/rotate"]))
def test_the_routes_that_read_bodies_with_bodies_built_to_reach_them(world, data, route):
    path = concrete(route, data.draw, world)
    body = data.draw(st.one_of(raw_json_texts, st.builds(json.dumps, objects_of_known_fields)))
    method = "POST" if not route.endswith(("flow_id>", "key_id>")) else data.draw(st.sampled_from(["PUT", "PATCH"]))
    if route.startswith("/api/v1/api_key/"):  # keys are managed with a session only
        client, headers = world["browser"], {}
    else:
        client, headers = world["anonymous"], {"HTTP_X_API_KEY": world["raw"]}
    response = client.generic(method, path, body.encode("utf-8", "surrogatepass"), content_type="application/json",
                              **headers)
    assert_no_server_error(method, path, response)
    assert_api_refusal_is_json(method, path, response)


@FUZZ
@given(data=st.data())
def test_no_page_request_gets_a_server_error(world, data):
    route = data.draw(st.sampled_from(PAGE_ROUTES))
    method, url, response = send(world, data.draw, route, page=True)
    assert_no_server_error(method, url, response)
