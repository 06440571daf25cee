"""The Knowledge component in runs: Retrieve ranks the owner's chunks, Ingest writes rows once,
a missing base is a 422 naming the node before anything runs, and an Agent calls it as a tool."""

import copy
import json
import uuid

import pytest

from flows import services as flow_services
from knowledge.models import Chunk
from tests.flows.conftest import load_fixture
from tests.flows.graphs import chat_in, chat_out, edge, flow_data, node
from tests.flows.scripted_model import ScriptedModelServer, calls, final

from .conftest import HANDBOOK, create_base, ingest_text

pytestmark = pytest.mark.django_db


def run(api_client, flow, key, input_value, tweaks=None):
    return api_client.post(f"/api/v1/run/{flow.pk}", {"input_value": input_value, "tweaks": tweaks or {}},
                           format="json", HTTP_X_API_KEY=key)


def answer(response) -> str:
    return response.json()["outputs"][0]["outputs"][0]["results"]["message"]["text"]


def retrieval_flow(user, pattern="{_score} {content}", **fields):
    knowledge = node("Knowledge-1", "Knowledge", **{"knowledge_base": "handbook", "mode": "Retrieve", **fields})
    parser = node("parser-1", "parser", mode="Parser", pattern=pattern, sep="\n")
    asked = [edge("ChatInput-1", "message", "Knowledge-1", "search_query")] if "{_score}" in pattern else []
    return flow_services.create_flow(owner=user, name=f"Retrieve {uuid.uuid4()}", data=flow_data(
        chat_in(), knowledge, parser, chat_out(), *asked,
        edge("Knowledge-1", "retrieve_data", "parser-1", "input_data"),
        edge("parser-1", "parsed_text", "ChatOutput-1", "input_value")))


@pytest.fixture
def handbook(api_client, user, key, embedder):
    assert create_base(api_client, key).status_code == 201
    assert ingest_text(api_client, key, "handbook", HANDBOOK, chunk_size=100, chunk_overlap=0).status_code == 200
    embedder.requests.clear()
    return "handbook"


def test_retrieve_ranks_the_closest_chunks_first_with_their_scores(api_client, user, key, handbook, embedder):
    response = run(api_client, retrieval_flow(user, top_k=2), key, "expense receipts travel reimbursed")
    assert response.status_code == 200, response.json()
    first, second = answer(response).split("\n")
    assert "Expense policy" in first and "Expense policy" not in second
    assert float(first.split()[0]) > float(second.split()[0])
    assert embedder.texts == ["expense receipts travel reimbursed"]


def test_retrieve_without_a_query_gives_the_first_chunks_unscored(api_client, user, key, handbook, embedder):
    flow = retrieval_flow(user, pattern="{content}", top_k=1)  # nothing feeds search_query
    response = run(api_client, flow, key, "")
    assert answer(response).startswith("Vacation policy") and embedder.requests == []


def test_a_missing_or_unnamed_base_is_a_422_naming_the_node_before_any_call(api_client, user, key, embedder):
    for name in ("nowhere", ""):
        flow = retrieval_flow(user, knowledge_base=name)
        response = run(api_client, flow, key, "question")
        assert response.status_code == 422, response.json()
        assert response.json()["node_ids"] == ["Knowledge-1"] and "knowledge_base" in response.json()["detail"]
    assert embedder.requests == []


def test_another_users_base_is_not_found_in_a_run(api_client, user, key, other_user, other_key, handbook):
    flow = flow_services.create_flow(owner=other_user, name="Theirs", data=retrieval_flow(user).data)
    response = run(api_client, flow, other_key, "vacation")
    assert response.status_code == 422 and "no knowledge base of yours" in response.json()["detail"]


def test_metadata_is_included_or_left_out_and_top_k_is_capped(api_client, user, key, handbook, settings):
    flow = retrieval_flow(user, top_k=1, include_metadata=False)
    flow.data["nodes"][2]["data"]["node"]["template"]["mode"]["value"] = "Stringify"
    flow_services.update_flow(flow, data=flow.data)
    row = json.loads(answer(run(api_client, flow, key, "vacation days")))  # Stringify: one row a line
    assert set(row) == {"content", "_score"}
    row = json.loads(answer(run(api_client, flow, key, "vacation days", {"Knowledge-1": {"include_metadata": True}})))
    assert row["source"] == "text" and row["chunk_index"] == 0
    settings.KNOWLEDGE_MAX_TOP_K = 3
    refused = run(api_client, flow, key, "vacation", {"Knowledge-1": {"top_k": 4}})
    assert refused.status_code == 422 and "'top_k'" in refused.json()["detail"]


def ingest_flow(user, **fields):
    knowledge = node("Knowledge-1", "Knowledge", **{"knowledge_base": "handbook", "mode": "Ingest", **fields})
    return flow_services.create_flow(owner=user, name=f"Ingest {uuid.uuid4()}", data=flow_data(
        chat_in(), knowledge, chat_out(),
        edge("ChatInput-1", "message", "Knowledge-1", "input_df"),
        edge("Knowledge-1", "dataframe_output", "ChatOutput-1", "input_value")))


def test_ingest_writes_a_row_once_unless_duplicates_are_allowed(api_client, user, key, embedder):
    create_base(api_client, key)
    flow = ingest_flow(user, metadata_json='{"tag": "faq"}')
    for _ in range(2):
        response = run(api_client, flow, key, "The office opens at nine.")
        assert response.status_code == 200, response.json()
    [chunk] = Chunk.objects.all()
    assert chunk.text == "The office opens at nine." and chunk.metadata["sender"] == "User"
    assert json.loads(chunk.metadata["source_metadata"]) == {"tag": "faq"}
    assert embedder.texts == ["The office opens at nine."]  # the duplicate was never embedded
    run(api_client, flow, key, "The office opens at nine.", {"Knowledge-1": {"allow_duplicates": True}})
    assert Chunk.objects.count() == 2


def test_ingest_then_retrieve_with_a_metadata_filter(api_client, user, key, embedder):
    create_base(api_client, key)
    flow = ingest_flow(user)
    run(api_client, flow, key, "Parking is free on weekends.", {"Knowledge-1": {"metadata_json": '{"tag": "a"}'}})
    run(api_client, flow, key, "Parking costs two euros.", {"Knowledge-1": {"metadata_json": '{"tag": "b"}'}})
    reader = retrieval_flow(user, top_k=5, metadata_filter='{"tag": ["b"]}')
    assert answer(run(api_client, reader, key, "parking")).split(" ", 1)[1] == "Parking costs two euros."
    bad = run(api_client, reader, key, "parking", {"Knowledge-1": {"metadata_filter": "{not json"}})
    assert bad.status_code == 422 and "'metadata_filter'" in bad.json()["detail"]


def test_ingest_past_the_chunk_cap_is_refused_before_embedding(api_client, user, key, embedder, settings):
    settings.KNOWLEDGE_MAX_CHUNKS = 1
    create_base(api_client, key)
    flow = ingest_flow(user, allow_duplicates=True)
    assert run(api_client, flow, key, "first").status_code == 200
    refused = run(api_client, flow, key, "second")
    assert refused.status_code == 422 and "KNOWLEDGE_MAX_CHUNKS" in refused.json()["detail"]
    assert embedder.texts == ["first"]


def test_a_column_the_input_lacks_is_a_422_naming_it(api_client, user, key, embedder):
    create_base(api_client, key)
    flow = ingest_flow(user, column_config=[{"column_name": "body", "vectorize": True, "identifier": False}])
    refused = run(api_client, flow, key, "text")
    assert refused.status_code == 422 and "'body'" in refused.json()["detail"]


def test_an_agent_calls_the_knowledge_base_as_its_retrieve_data_tool(api_client, user, key, handbook, settings):
    starter = load_fixture("starters/Vector Store RAG.json")["data"]["nodes"]
    agent = copy.deepcopy(next(item for item in starter if item["data"]["type"] == "Agent"))
    knowledge = copy.deepcopy(next(item for item in starter if item["data"]["type"] == "Knowledge"))
    knowledge["data"]["node"]["template"]["knowledge_base"]["value"] = "handbook"
    flow = flow_services.create_flow(owner=user, name="Agentic", data=flow_data(
        chat_in(), agent, knowledge, chat_out(),
        edge("ChatInput-1", "message", agent["id"], "input_value"),
        edge(knowledge["id"], "component_as_tool", agent["id"], "tools"),
        edge(agent["id"], "response", "ChatOutput-1", "input_value")))
    with ScriptedModelServer([calls(("retrieve_data", {"search_query": "paid vacation days"})),
                              final("25 days.")]) as model:
        settings.OPENAI_BASE_URL = model.base_url
        response = run(api_client, flow, key, "How much vacation do I get?",
                       {agent["id"]: {"add_current_date_tool": False}})
        assert response.status_code == 200, response.json()
        assert answer(response) == "25 days."
        tools = {tool["function"]["name"] for tool in model.requests[0]["tools"]}
        assert "retrieve_data" in tools
        [result] = [message for message in model.requests[1]["messages"] if message["role"] == "tool"]
        rows = json.loads(result["content"])
        assert rows[0]["content"].startswith("Vacation policy")
