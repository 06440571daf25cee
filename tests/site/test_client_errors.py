"""Every client error answers a 4xx (JSON ``{"detail": ...}`` on /api/, the error page elsewhere), never a 500.

The audit's payloads, each sent where it was found, plus the class behind them: whatever Django
or Python raise for bad input (SuspiciousOperation, BadRequest, RecursionError, DataError,
OverflowError, UnicodeDecodeError) is mapped, in DRF views and in plain Django views alike.
"""

import contextlib
import json
import re
import sys
import uuid

import pytest
from django.core.exceptions import BadRequest, SuspiciousOperation, TooManyFieldsSent
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DataError
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.views import APIView

from apikeys.models import ApiKey, ApiKeyEvent
from core.errors import ClientErrorMiddleware
from core.jsonlimits import MAX_JSON_DEPTH, nesting_exceeds
from flows.models import Flow
from tests.flows.conftest import load_fixture

pytestmark = pytest.mark.django_db

LEAK_REPORT = "/api/v1/api_key/revoke-leaked"
KEYS = "/api/v1/api_key/"
FLOWS = "/api/v1/flows/"
UPLOAD = "/api/v1/flows/upload/"


def nested(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


@contextlib.contextmanager
def deep_stack_allowed(limit: int = 20000):
    """Raise Python's recursion limit, as a shallower stack (gunicorn's) effectively does: JSON
    nested ~920 deep then parses, and only the server's own bounds can refuse it."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(limit)
    try:
        yield
    finally:
        sys.setrecursionlimit(before)


def assert_json_4xx(response, status: int | None = None, *, mentions: str = "") -> dict:
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    if status is not None:
        assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    if "error" in body:  # /api/v1/responses answers in OpenAI's shape, for the openai package
        body = {"detail": body["error"]["message"]}
    assert isinstance(body["detail"], str) and body["detail"]
    assert mentions.lower() in body["detail"].lower(), body["detail"]
    return body


@pytest.fixture
def client():
    return Client(raise_request_exception=False)


@pytest.fixture
def session(user):
    browser = Client(raise_request_exception=False)
    browser.force_login(user)
    return browser


@pytest.fixture
def key(user, make_key):
    return make_key(user)[1]


# --- Deeply nested JSON -----------------------------------------------------------------------

@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 920, 100_000])
def test_deeply_nested_json_on_the_key_api_and_the_leak_report_is_a_400(client, session, depth):
    with deep_stack_allowed():
        leak = client.post(LEAK_REPORT, '{"api_key": ' + nested(depth) + "}", content_type="application/json")
        create = session.post(KEYS, '{"allowed_ips": ' + nested(depth) + "}", content_type="application/json")
    assert_json_4xx(leak, 400, mentions="nested")
    assert_json_4xx(create, 400, mentions="nested")
    assert not ApiKey.objects.exists()


def test_json_at_the_depth_limit_is_still_read(session):
    body = '{"name": "ok", "allowed_ips": ' + nested(MAX_JSON_DEPTH - 1, '"10.0.0.1"') + "}"
    response = session.post(KEYS, body, content_type="application/json")
    assert_json_4xx(response, 422)  # read, then refused for its content: not a list of strings


def deep_flow(depth: int = 920) -> dict:
    flow = load_fixture("echo.json")
    flow["data"]["nodes"][0]["data"]["node"]["template"]["deep"] = json.loads(nested(depth))
    return flow


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 920])
def test_a_flow_nested_920_levels_deep_is_refused_by_every_route_that_stores_flows(client, key, depth):
    flow_id = uuid.uuid4()
    raw = json.dumps(deep_flow(depth))
    with deep_stack_allowed():
        answers = [
            client.post(FLOWS, raw, content_type="application/json", HTTP_X_API_KEY=key),
            client.put(f"{FLOWS}{flow_id}", raw, content_type="application/json", HTTP_X_API_KEY=key),
            client.post(UPLOAD, raw, content_type="application/json", HTTP_X_API_KEY=key),
            client.post(UPLOAD, {"file": SimpleUploadedFile("deep.json", raw.encode())}, HTTP_X_API_KEY=key),
        ]
    for response in answers:
        assert_json_4xx(response, mentions="nested")
    assert not Flow.objects.exists()


def test_a_deep_flow_cannot_replace_a_stored_one(client, user, key):
    stored = Flow.objects.create(owner=user, name="Echo", data=load_fixture("echo.json")["data"])
    with deep_stack_allowed():
        response = client.patch(f"{FLOWS}{stored.pk}", json.dumps({"data": deep_flow()["data"]}),
                                content_type="application/json", HTTP_X_API_KEY=key)
    assert_json_4xx(response, mentions="nested")
    stored.refresh_from_db()
    assert not nesting_exceeds(stored.data)


def test_a_deep_flow_file_is_a_form_error_on_the_import_page(user):
    browser = Client(raise_request_exception=False)
    browser.force_login(user)
    with deep_stack_allowed():
        response = browser.post("/flows/import/", {"file": SimpleUploadedFile(
            "deep.json", json.dumps(deep_flow()).encode())})
    assert response.status_code == 400 and b"nested more than 64 levels deep" in response.content
    assert not Flow.objects.exists()


def test_nesting_is_measured_without_recursion():
    assert not nesting_exceeds(json.loads(nested(MAX_JSON_DEPTH)))
    assert nesting_exceeds(json.loads(nested(MAX_JSON_DEPTH + 1)))
    assert not nesting_exceeds({"a": [{"b": 1}] * 1000, "c": "x"}, limit=3)
    assert nesting_exceeds({"a": [{"b": {}}]}, limit=3)
    assert not nesting_exceeds("text") and not nesting_exceeds(None)
    with deep_stack_allowed(200_000):
        very_deep = json.loads(nested(50_000))
    assert nesting_exceeds(very_deep)  # no RecursionError at the default limit


# --- Too many parameters, files and fields ------------------------------------------------------

def _concrete_api_paths(patterns=None, prefix=""):
    """Every JSON route under /api/ with its parameters filled in (/api/docs/ is a page)."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _concrete_api_paths(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern) and route.startswith("api/") and route != "api/docs/":
            yield "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda match: str(uuid.uuid4()), route)


API_PATHS = sorted(set(_concrete_api_paths()))
MANY_PARAMETERS = "&".join(f"p{number}=1" for number in range(1001))


def test_every_api_route_is_checked():
    assert {"/api/v1/users/whoami", KEYS, LEAK_REPORT, FLOWS, UPLOAD} <= set(API_PATHS)
    assert any(path.startswith("/api/v1/run/") for path in API_PATHS)


@pytest.mark.parametrize("path", API_PATHS)
@pytest.mark.parametrize("method", ["get", "post"])
def test_more_than_1000_query_parameters_are_a_400_on_every_api_route_before_authentication(
        client, key, path, method):
    anonymous = getattr(client, method)(f"{path}?{MANY_PARAMETERS}")
    assert_json_4xx(anonymous, 400, mentions="at most 1000")
    with_key = getattr(client, method)(f"{path}?{MANY_PARAMETERS}&x-api-key={key}")
    assert_json_4xx(with_key, 400, mentions="at most 1000")
    api_key = ApiKey.objects.get()
    assert api_key.total_uses == 0 and not ApiKeyEvent.objects.filter(kind=ApiKeyEvent.Kind.AUTH_FAILED).exists()


def test_more_than_1000_query_parameters_are_a_400_page_elsewhere(client):
    response = client.get(f"/login/?{MANY_PARAMETERS}")  # reads ?next=
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html") and b"at most 1000" in response.content
    assert client.get(f"/api/docs/?{MANY_PARAMETERS}").status_code == 400


def test_more_than_100_files_in_an_upload_is_a_400(client, key):
    files = {f"file{number}": SimpleUploadedFile(f"{number}.json", b"{}") for number in range(101)}
    assert_json_4xx(client.post(UPLOAD, files, HTTP_X_API_KEY=key), 400, mentions="at most 100")
    assert not Flow.objects.exists()


def test_more_than_1000_form_fields_in_an_upload_is_a_400(client, key):
    fields = {f"field{number}": "x" for number in range(1001)}
    fields["file"] = SimpleUploadedFile("echo.json", json.dumps(load_fixture("echo.json")).encode())
    assert_json_4xx(client.post(UPLOAD, fields, HTTP_X_API_KEY=key), 400, mentions="at most 1000")
    assert not Flow.objects.exists()


def test_more_than_1000_form_fields_on_a_page_is_a_400_page(client):
    fields = {f"field{number}": "x" for number in range(1001)}
    response = client.post("/login/", fields)
    assert response.status_code == 400 and b"at most 1000" in response.content


def test_a_json_body_over_the_upload_limit_on_the_key_api_is_a_413(session, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"name": "x" * 2000})
    assert_json_4xx(session.post(KEYS, body, content_type="application/json"), 413, mentions="1000 bytes")
    assert_json_4xx(Client().post(LEAK_REPORT, body, content_type="application/json"), 413)


# --- Numbers and text the databases cannot hold --------------------------------------------------

@pytest.mark.parametrize("page", [str(2**63), str(2**64 + 1), "9" * 25, "9" * 5000])
def test_a_page_number_past_64_bits_is_a_422(client, key, page):
    response = client.get(f"{FLOWS}?get_all=false&page={page}", HTTP_X_API_KEY=key)
    assert_json_4xx(response, 422, mentions="page")


def test_the_largest_page_still_answers(client, key):
    response = client.get(f"{FLOWS}?get_all=false&page=1000000000&size=1000", HTTP_X_API_KEY=key)
    assert response.status_code == 200 and response.json() == []


@pytest.mark.parametrize("body, mentions", [
    (b'{"api_key": "\xff\xfe"}', "UTF-8"),
    (b'{"api_key": NaN}', "NaN"),
    (b'{"api_key": ' + b"9" * 5000 + b"}", "digits"),
    (b'{"api_key": "x"', "JSON"),
])
def test_malformed_json_on_the_key_api_is_a_400_with_a_short_reason(client, session, body, mentions):
    assert_json_4xx(client.post(LEAK_REPORT, body, content_type="application/json"), 400, mentions=mentions)
    assert_json_4xx(session.post(KEYS, body, content_type="application/json"), 400, mentions=mentions)


# --- The class: whatever is raised for bad input, in any view -----------------------------------

CLIENT_ERRORS = [
    (TooManyFieldsSent("x"), 400, "at most"),
    (SuspiciousOperation("x"), 400, "could not be understood"),
    (BadRequest("x"), 400, "could not be understood"),
    (RecursionError("x"), 400, "nested"),
    (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), 400, "UTF-8"),
    (DataError("numeric value out of range"), 422, "out of range"),
    (OverflowError("Python int too large to convert to SQLite INTEGER"), 422, "out of range"),
]


class Raising(APIView):
    authentication_classes = []
    permission_classes = []
    error: Exception = None

    def get(self, request):
        raise self.error


@pytest.mark.parametrize("error, status, mentions", CLIENT_ERRORS)
def test_an_api_view_answers_each_client_error_with_json(error, status, mentions):
    response = Raising.as_view(error=error)(RequestFactory().get("/api/v1/anything"))
    assert_json_4xx(response, status, mentions=mentions)


@pytest.mark.parametrize("error, status, mentions", CLIENT_ERRORS)
@pytest.mark.parametrize("path, content_type", [("/api/v1/anything", "application/json"), ("/flows/", "text/html")])
def test_a_plain_view_answers_each_client_error_without_a_500(error, status, mentions, path, content_type):
    middleware = ClientErrorMiddleware(lambda request: None)
    response = middleware.process_exception(RequestFactory().get(path), error)
    assert response.status_code == status
    assert response["Content-Type"].startswith(content_type)
    assert mentions.lower().encode() in response.content.lower()


def test_other_errors_stay_500s_for_the_500_handler():
    middleware = ClientErrorMiddleware(lambda request: None)
    assert middleware.process_exception(RequestFactory().get("/flows/"), KeyError("bug")) is None
    response = Raising.as_view(error=KeyError("bug"))(RequestFactory().get("/api/v1/anything"))
    assert response.status_code == 500


@pytest.mark.parametrize("content_type", ["application/json; charset=latin-1", "text/plain; charset=utf-8",
                                          "multipart/form-data; boundary=x; charset=ascii"])
def test_too_many_parameters_with_a_charset_in_the_content_type_is_a_400_not_a_crash(client, content_type):
    """Django's encoding setter parsed the query string while building the request, before any
    handler could answer: the server itself failed. Now the first reader parses it, and answers."""
    for path in ("/api/v1/flows/", "/api/v1/api_key/revoke-leaked", "/api/v1/users/whoami"):
        response = client.generic("POST", f"{path}?{MANY_PARAMETERS}", b"{}", content_type=content_type)
        assert_json_4xx(response, 400, mentions="at most 1000")
    response = client.generic("GET", f"/login/?{MANY_PARAMETERS}", b"", content_type=content_type)
    assert response.status_code == 400


def test_a_charset_still_decodes_the_query_string_it_names(rf):
    request = rf.get("/x?name=%E9t%E9", CONTENT_TYPE="text/plain; charset=latin-1")
    assert request.GET["name"] == "été"
    request.encoding = "utf-8"  # set after GET was read: read again with the new charset
    assert request.GET["name"] == "\ufffdt\ufffd"


@pytest.mark.parametrize("method, path", [("post", "/api/v1/schema/"), ("options", "/api/docs/"),
                                          ("post", "/api/docs/"), ("delete", "/api/v1/users/whoami")])
@pytest.mark.parametrize("accept", ["application/vnd.oai.openapi", "text/html", "application/xml"])
def test_refusals_are_json_even_where_success_is_yaml_or_html(client, method, path, accept):
    response = getattr(client, method)(path, HTTP_ACCEPT=accept)
    assert response.status_code in (405, 406)  # the method, or a media type it cannot give
    assert_json_4xx(response)


@pytest.mark.parametrize("query", ["?id__exact=" + "9" * 30, "?p=" + "9" * 30, "?created_at__gte=zz", "?q=%00",
                                   "?kind=%00", "?o=999", "?api_key__id__exact=zz", "?q=" + "a" * 5000])
@pytest.mark.parametrize("path", ["/admin/apikeys/apikeyevent/", "/admin/apikeys/apikey/", "/admin/flows/flow/",
                                  "/admin/apikeys/apikeyevent/" + "9" * 30 + "/change/", "/admin/flows/flow/%00/change/"])
def test_the_admin_answers_hostile_lookups_without_a_500(admin_user, path, query):
    browser = Client(raise_request_exception=False)
    browser.force_login(admin_user)
    assert browser.get(path + query).status_code < 500


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_served_through_asgi_the_same_requests_answer_4xx(settings):
    """Django's ASGI handler builds the request, and answers errors, on other threads than WSGI's."""
    from django.test import AsyncClient

    from core import middleware as site_middleware

    settings.MIDDLEWARE = site_middleware.for_asgi(settings.MIDDLEWARE)
    client = AsyncClient(raise_request_exception=False)
    for content_type in ("application/json", "application/json; charset=latin-1"):
        response = await client.generic("POST", f"/api/v1/flows/?{MANY_PARAMETERS}", b"{}", content_type=content_type)
        assert_json_4xx(response, 400, mentions="at most 1000")
        page = await client.generic("GET", f"/login/?{MANY_PARAMETERS}", b"", content_type=content_type)
        assert page.status_code == 400 and b"at most 1000" in page.content
    deep = await client.post(LEAK_REPORT, '{"api_key": ' + nested(5000) + "}", content_type="application/json")
    assert_json_4xx(deep, 400, mentions="nested")
