"""``run_request_fields`` gives what ``RunRequestSerializer`` gives, for any body: the same fields,
or the same errors."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.exceptions import ValidationError

from flows.serializers import RunRequestSerializer, run_request_fields

FIELDS = ("input_value", "input_type", "output_type", "output_component", "tweaks", "inputs", "session_id",
          "stream")


def through_serializer(body):
    serializer = RunRequestSerializer(data=body)
    if serializer.is_valid():
        return "valid", dict(serializer.validated_data)
    return "invalid", serializer.errors


def through_fields(body):
    try:
        return "valid", run_request_fields(body)
    except ValidationError as error:
        return "invalid", error.detail


def assert_same(body):
    assert through_fields(body) == through_serializer(body)


@pytest.mark.parametrize("body", [
    {},
    {"input_value": "hello", "input_type": "chat", "output_type": "chat"},
    {"input_value": "  padded  ", "session_id": "s-1", "stream": True},
    {"input_value": None, "output_component": None, "session_id": None, "tweaks": None, "inputs": None},
    {"input_value": "", "output_component": "", "session_id": ""},
    {"tweaks": {"ChatInput-1": {"should_store_message": False}}, "inputs": {"input_value": "x"}},
    {"input_type": "any", "output_type": "debug", "stream": False, "unknown": [1, 2]},
    # Each of these takes the serializer's way: converted, trimmed, or refused.
    {"input_value": 12}, {"input_value": 1.5}, {"input_value": True}, {"input_value": ["a"]},
    {"input_value": "nul\x00char"}, {"input_value": "caf\u00e9"}, {"input_value": "lone \ud800"},
    {"session_id": " padded "}, {"session_id": "   "}, {"session_id": "x" * 255}, {"session_id": "x" * 256},
    {"output_component": " ChatOutput-1"}, {"output_component": 7},
    {"input_type": "Chat"}, {"input_type": None}, {"input_type": ""}, {"output_type": 1},
    {"tweaks": []}, {"tweaks": "a"}, {"inputs": 3},
    {"stream": "true"}, {"stream": 1}, {"stream": None}, {"stream": "maybe"},
    [], "text", None, 3,
])
def test_same_result_as_the_serializer(body):
    assert_same(body)


def test_the_objects_given_are_copies():
    tweaks = {"node": {"field": 1}}
    fields = run_request_fields({"tweaks": tweaks})
    assert fields["tweaks"] == tweaks and fields["tweaks"] is not tweaks


texts = st.one_of(st.none(), st.text(max_size=8), st.sampled_from(["chat", "text", "any", "debug", " chat", ""]),
                  st.text(alphabet=" \t\x00\ud800é-ab", max_size=4))
values = st.one_of(texts, st.booleans(), st.integers(), st.floats(allow_nan=False),
                   st.dictionaries(st.text(max_size=3), st.integers(), max_size=2), st.lists(st.integers(), max_size=2))


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELDS + ("other",)), values, max_size=5))
def test_same_result_for_any_body(body):
    assert_same(body)


@pytest.mark.parametrize("query", [
    "", "stream=true", "stream=false", "stream=1", "stream=0", "stream=True", "stream=off", "stream=yes",
    "stream=", "stream=maybe", "stream=false&stream=true", "stream=true&stream=no", "other=1",
])
def test_stream_asked_reads_the_query_as_the_serializer_does(query):
    from django.http import QueryDict

    from flows.serializers import StreamQuerySerializer, stream_asked

    params = QueryDict(query)
    serializer = StreamQuerySerializer(data=params)
    if serializer.is_valid():
        expected = ("valid", serializer.validated_data["stream"])
    else:
        expected = ("invalid", serializer.errors)
    try:
        got = ("valid", stream_asked(params))
    except ValidationError as error:
        got = ("invalid", error.detail)
    assert got == expected
