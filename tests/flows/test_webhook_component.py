"""The Webhook component: a webhook call's raw body as Data, bad JSON kept as text (as Langflow does)."""

import asyncio
import dataclasses
import json

import pytest

from flows import engine
from flows.engine.components.webhook import Webhook
from flows.engine.limits import Limits
from tests.flows.graphs import chat_out, edge, flow_data, node


def build(body, limits: Limits | None = None):
    graph = engine.compile_graph(flow_data(node("Webhook-1", "Webhook", "Webhook", data="")))
    plan = engine.plan_run(graph, engine.RunRequest(output_type="debug", tweaks={"Webhook-1": {"data": body}}),
                           flow_id="flow", limits=limits)
    result = asyncio.run(engine.run_to_end(plan))
    [output] = result.outputs
    return output.value


@pytest.mark.parametrize(("body", "data"), [
    ('{"name": "Ada", "tags": ["a", "b"]}', {"name": "Ada", "tags": ["a", "b"]}),
    ("not json {", {"payload": "not json {"}),
    ("name=Ada&x=1", {"payload": "name=Ada&x=1"}),
    ("[1, 2, 3]", {"payload": [1, 2, 3]}),
    ("42", {"payload": 42}),
    ("", {}),
    ("   \n", {}),
])
def test_the_body_becomes_data(body, data):
    assert build(body) == data


def test_json_nested_deeper_than_a_request_may_be_stays_text():
    deep = "[" * 100 + "]" * 100
    assert build(deep) == {"payload": deep}
    shallow = "[" * 10 + "]" * 10
    assert build(shallow) == {"payload": json.loads(shallow)}


def test_a_body_larger_than_a_value_may_be_is_refused_naming_the_node():
    with pytest.raises(engine.FlowError) as refused:
        build(json.dumps({"text": "x" * 2000}), dataclasses.replace(Limits.from_settings(), max_value_bytes=1000))
    assert "Webhook-1" in str(refused.value)


def test_an_export_without_the_data_field_still_takes_the_body():
    graph = engine.compile_graph(flow_data(node("Webhook-1", "Webhook", "Webhook"), chat_out(),
                                           edge("Webhook-1", "output_data", "ChatOutput-1", "input_value")))
    plan = engine.plan_run(graph, engine.RunRequest(tweaks={"Webhook-1": {"data": '{"text": "hi"}'}}), flow_id="f")
    result = asyncio.run(engine.run_to_end(plan))
    assert result.outputs[0].value.text == "hi"
    assert Webhook.type_names == ("Webhook",)
