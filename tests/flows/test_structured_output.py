"""Structured Output: JSON-schema output through the model, validated against the export's table."""

import copy
import json

import pytest

from flows import services
from tests.flows.conftest import load_fixture
from tests.flows.scripted_model import ScriptedModelServer, final

pytestmark = pytest.mark.django_db

MARKET = "starters/Market Research.json"
NODE = "StructuredOutput-zfjb9"


@pytest.fixture
def scripted(settings):
    with ScriptedModelServer() as server:
        settings.OPENAI_BASE_URL = server.base_url
        yield server


def edge(source, output, target, field):
    return {"source": source, "target": target,
            "data": {"sourceHandle": {"id": source, "name": output}, "targetHandle": {"id": target, "fieldName": field}}}


def flow(user, output="dataframe_output", rows=None):
    """Market Research's Chat Input -> Structured Output -> Parser -> Chat Output (its agent left out)."""
    nodes = {node["id"]: copy.deepcopy(node) for node in load_fixture(MARKET)["data"]["nodes"]}
    structured = nodes[NODE]
    if rows is not None:
        structured["data"]["node"]["template"]["output_schema"]["value"] = rows
    parser = nodes["ParserComponent-8lfAE"]
    parser["data"]["node"]["template"]["pattern"]["value"] = "{domain}: trial={hasFreeTrial}, tiers={pricingTiers}"
    data = {"nodes": [nodes["ChatInput-OSw5o"], structured, parser, nodes["ChatOutput-tjFWM"]],
            "edges": [edge("ChatInput-OSw5o", "message", NODE, "input_value"),
                      edge(NODE, output, "ParserComponent-8lfAE", "input_data"),
                      edge("ParserComponent-8lfAE", "parsed_text", "ChatOutput-tjFWM", "input_value")]}
    [imported] = services.import_flows(user=user, payload={"name": "structured", "data": data})
    return imported


def run(api_client, flow, key):
    return api_client.post(f"/api/v1/run/{flow.pk}", {"input_value": "Acme sells rockets."}, format="json",
                           HTTP_X_API_KEY=key)


def text_of(response):
    assert response.status_code == 200, response.content
    return response.json()["outputs"][0]["outputs"][0]["results"]["message"]["text"]


def company(**fields):
    base = {"domain": "acme.test", "linkedinUrl": None, "cheapestPlan": "10", "hasFreeTrial": True,
            "hasEnterprisePlan": False, "hasAPI": True, "market": "B2B", "pricingTiers": ["Free", "Pro"],
            "KeyFeatures": [], "targetIndustries": ["space"]}
    return {**base, **fields}


def test_the_model_is_asked_for_the_tables_schema_and_its_objects_flow_on(api_client, user, key, scripted):
    scripted.script = [final(json.dumps({"objects": [company(), company(domain="beta.test", hasFreeTrial=False)]}))]
    text = text_of(run(api_client, flow(user), key))
    assert text == "acme.test: trial=True, tiers=['Free', 'Pro']\nbeta.test: trial=False, tiers=['Free', 'Pro']"
    body = scripted.requests[0]
    assert body["messages"][0]["role"] == "system" and "extracts structured JSON" in body["messages"][0]["content"]
    assert body["messages"][1] == {"role": "user", "content": "Acme sells rockets."}
    response_format = body["response_format"]
    assert response_format["type"] == "json_schema" and response_format["json_schema"]["strict"] is True
    item = response_format["json_schema"]["schema"]["properties"]["objects"]["items"]
    assert item["properties"]["hasFreeTrial"] == {"type": ["boolean", "null"],
                                                  "description": "Boolean indicating if they offer a free trial"}
    assert item["properties"]["pricingTiers"]["type"] == ["array", "null"]
    assert len(item["required"]) == 10 and item["additionalProperties"] is False


def test_one_object_is_the_data_itself_and_missing_fields_are_null(api_client, user, key, scripted):
    scripted.script = [final('```json\n{"objects": [{"domain": "solo.test", "hasFreeTrial": null, "extra": 1}]}\n```')]
    assert text_of(run(api_client, flow(user, output="structured_output"), key)) == "solo.test: trial=None, tiers=None"


@pytest.mark.parametrize(("answer", "problem"), [
    ("Sorry, I cannot do that.", "no JSON found"),
    (json.dumps({"objects": [company(hasFreeTrial="yes")]}), "objects[0].hasFreeTrial must be true or false"),
    (json.dumps({"objects": [company(pricingTiers="Free")]}), "objects[0].pricingTiers must be a list"),
    (json.dumps({"objects": [company(pricingTiers=[1, 2])]}), "objects[0].pricingTiers must be a list of str"),
    (json.dumps({"objects": [company(domain=7), "nope"]}), "objects[0].domain must be a string; objects[1] is not"),
    (json.dumps("just text"), "the answer is not a JSON object"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
])
def test_an_answer_that_does_not_validate_is_a_502_saying_why(api_client, user, key, scripted, answer, problem):
    scripted.script = [final(answer)]
    response = run(api_client, flow(user), key)
    assert response.status_code == 502
    detail = response.json()["detail"]
    assert detail.startswith(f"Node {NODE}: the model's answer does not match the output schema: ")
    assert problem in detail


@pytest.mark.parametrize(("rows", "problem"), [
    ([], "'output_schema' must list at least one field"),
    ([{"name": "a", "type": "decimal"}], "has type 'decimal'"),
    ([{"name": "a"}, {"name": "a"}], "names the field 'a' twice"),
    ([{"description": "no name"}], "row 1 needs a name"),
])
def test_a_bad_output_schema_is_a_422_naming_the_node(api_client, user, key, scripted, rows, problem):
    response = run(api_client, flow(user, rows=rows), key)
    assert response.status_code == 422
    assert NODE in response.json()["detail"] and problem in response.json()["detail"]
    assert scripted.requests == []


def test_a_dict_field_turns_strict_mode_off(api_client, user, key, scripted):
    scripted.script = [final('{"objects": [{"domain": "d", "meta": {"any": ["thing"]}}]}')]
    rows = [{"name": "domain", "type": "str"}, {"name": "meta", "type": "dict", "multiple": False}]
    assert text_of(run(api_client, flow(user, rows=rows), key)) == "d: trial=, tiers="
    assert scripted.requests[0]["response_format"]["json_schema"]["strict"] is False
