import logging

import pytest

from apikeys.logging import RedactApiKeysFilter, redact_text

pytestmark = pytest.mark.django_db


def test_health_needs_no_authentication(client):
    response = client.get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_unknown_api_route_answers_json_404(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_query_string_key_is_redacted_from_request_log_lines(user, make_key):
    _, raw = make_key(user)
    record = logging.LogRecord(
        "django.server", logging.INFO, __file__, 1, '"%s" %s %s', (f"GET /api/v1/run/x?x-api-key={raw}&a=1 HTTP/1.1", 200, 10), None
    )
    RedactApiKeysFilter().filter(record)
    line = record.getMessage()
    assert raw not in line
    assert "x-api-key=[REDACTED]&a=1" in line


def test_malformed_keys_in_a_query_are_redacted_too():
    assert redact_text("/x?X-API-KEY=sk-whatever") == "/x?X-API-KEY=[REDACTED]"
    assert redact_text("/x?x%2Dapi%2Dkey=secret") == "/x?x%2Dapi%2Dkey=[REDACTED]"


def test_key_in_a_request_never_reaches_the_logs(client, user, make_key, caplog):
    _, raw = make_key(user)
    with caplog.at_level(logging.DEBUG):
        client.get(f"/api/v1/nothing?x-api-key={raw}")
        logging.getLogger("django.request").warning("Not Found: /api/v1/nothing?x-api-key=%s", raw)
    handler_filter = RedactApiKeysFilter()
    for record in caplog.records:
        handler_filter.filter(record)
        assert raw not in record.getMessage()


def test_security_headers(client):
    response = client.get("/health")
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["X-Content-Type-Options"] == "nosniff"
