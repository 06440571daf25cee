"""Log redaction covers every form of a key the server would accept: decoding first, as Django does."""

import logging
from urllib.parse import unquote

import pytest
from django.http import QueryDict
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from apikeys import authentication, crypto
from apikeys.logging import QUERY_PARAMETER, RedactApiKeysFilter, redact_text

pytestmark = pytest.mark.django_db

SECRET_START = len(crypto.PREFIX) + crypto.LOOKUP_ID_LENGTH + 1


def percent_encoded(text: str, draw_choices) -> str:
    """Each character plain, or %xx / %XX, as the choices say."""
    out = []
    for character, choice in zip(text, draw_choices, strict=False):
        if choice == 0:
            out.append(character)
        else:
            hex_code = f"{ord(character):02x}"
            out.append("%" + (hex_code if choice == 1 else hex_code.upper()))
    return "".join(out)


def secret_of(raw: str) -> str:
    return raw[SECRET_START:]


def assert_no_secret(line: str, raw: str) -> None:
    secret = secret_of(raw)
    assert secret not in line and secret not in unquote(line), line
    # not even a long piece of it, plainly or decoded
    for start in range(0, len(secret) - 8):
        assert secret[start:start + 8] not in unquote(line), line


def test_the_redacted_parameter_is_the_one_authentication_reads():
    assert QUERY_PARAMETER == authentication.QUERY_PARAMETER


def test_the_audits_percent_encoded_parameter_name_and_key_are_redacted():
    _, raw = crypto.generate_key()
    encoded_key = raw.replace("_", "%5F")
    line = f'127.0.0.1 - "GET /api/v1/users/whoami?x%2Dapi-key={encoded_key} HTTP/1.1" 200'
    assert QueryDict(line.split("?", 1)[1].split(" ")[0]).get(QUERY_PARAMETER) == raw  # the server reads it
    redacted = redact_text(line)
    assert_no_secret(redacted, raw)
    assert "x%2Dapi-key=[REDACTED] HTTP/1.1" in redacted


@hypothesis_settings(max_examples=200, deadline=None)
@given(
    name_choices=st.lists(st.integers(0, 2), min_size=len(QUERY_PARAMETER), max_size=len(QUERY_PARAMETER)),
    key_choices=st.lists(st.integers(0, 2), min_size=crypto.KEY_LENGTH, max_size=crypto.KEY_LENGTH),
    before=st.sampled_from(["", "a=1&", "page=2&size=3&"]),
    after=st.sampled_from(["", "&b=2", "&stream=true"]),
    quote=st.sampled_from(['"', "'", ""]),
)
def test_any_encoding_the_server_accepts_is_redacted(name_choices, key_choices, before, after, quote):
    _, raw = crypto.generate_key()
    query = f"{before}{percent_encoded(QUERY_PARAMETER, name_choices)}={percent_encoded(raw, key_choices)}{after}"
    assert QueryDict(query).get(QUERY_PARAMETER) == raw  # a form the server accepts
    line = f"{quote}POST /api/v1/run/echo?{query} HTTP/1.1{quote} 200 12"
    assert_no_secret(redact_text(line), raw)


@hypothesis_settings(max_examples=100, deadline=None)
@given(key_choices=st.lists(st.integers(0, 2), min_size=crypto.KEY_LENGTH, max_size=crypto.KEY_LENGTH),
       where=st.sampled_from(["/api/v1/flows/{}", "/x?token={}", "Referer: https://e.example/?k={}", "{}"]))
def test_a_key_anywhere_else_in_a_line_is_masked_keeping_its_lookup_id(key_choices, where):
    lookup_id, raw = crypto.generate_key()
    line = where.format(percent_encoded(raw, key_choices))
    redacted = redact_text(line)
    assert_no_secret(redacted, raw)
    assert crypto.mask(lookup_id) in redacted


@pytest.mark.parametrize("line", [
    "GET /api/v1/flows/?page=1&size=50 HTTP/1.1",
    "GET /static/css/site.css HTTP/1.1",
    "lfsk_ too short, lfsk_AbC_def",
    "x-api-key-hint=keep?&not-x-api-key=",
])
def test_lines_without_a_key_are_left_alone(line):
    assert redact_text(line) == line


def test_a_request_with_an_encoded_key_works_and_no_log_line_keeps_it(client, user, make_key, caplog):
    _, raw = make_key(user)
    encoded = percent_encoded(raw, [1 if character == "_" else 0 for character in raw])
    with caplog.at_level(logging.DEBUG):
        response = client.get(f"/api/v1/users/whoami?x%2Dapi%2dkey={encoded}")
        logging.getLogger("gunicorn.access").info('"GET %s HTTP/1.1" %s', response.request["PATH_INFO"] + "?"
                                                  + response.request["QUERY_STRING"], 200)
    assert response.status_code == 200  # accepted: so it must never be logged
    redaction = RedactApiKeysFilter()
    assert caplog.records
    for record in caplog.records:
        redaction.filter(record)
        assert_no_secret(record.getMessage(), raw)
