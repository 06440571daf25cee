"""Langflow's three starters with a Knowledge node, as exported, end to end: the knowledge base is
created and filled through the API, the run's Knowledge node names it (a tweak: the exports leave
it empty), and the Agent (a scripted model) reads what it retrieved."""

import pytest

from flows import services as flow_services
from tests.flows.conftest import load_fixture
from tests.flows.scripted_model import ScriptedModelServer

from .conftest import HANDBOOK, create_base, ingest_text

pytestmark = pytest.mark.django_db

QUESTION = "How many days of paid vacation do employees get?"
STARTERS = {  # name: (Knowledge node, Agent node or None)
    "Knowledge Retrieval.json": ("Knowledge-Y8gm2", None),
    "Document Q&A.json": ("KnowledgeRetrieve-docqa", "Agent-docqa"),
    "Vector Store RAG.json": ("Knowledge-vLJOb", "Agent-F0Dv0"),
}


@pytest.fixture
def handbook(api_client, user, key, embedder):
    assert create_base(api_client, key).status_code == 201
    response = ingest_text(api_client, key, "handbook", HANDBOOK, chunk_size=100, chunk_overlap=0)
    assert response.json()["chunks_created"] == 3
    return "handbook"


@pytest.fixture
def scripted(settings):
    with ScriptedModelServer() as server:
        settings.OPENAI_BASE_URL = server.base_url
        server.responder = lambda body: {"content": "Employees get twenty five days."}
        yield server


def run(api_client, flow, key, tweaks):
    return api_client.post(f"/api/v1/run/{flow.pk}", {"input_value": QUESTION, "tweaks": tweaks}, format="json",
                           HTTP_X_API_KEY=key)


def answer(response) -> str:
    return response.json()["outputs"][0]["outputs"][0]["results"]["message"]["text"]


def imported(user, name):
    [flow] = flow_services.import_flows(user=user, payload=load_fixture(f"starters/{name}"), runnable_only=True)
    return flow


@pytest.mark.parametrize("name", sorted(STARTERS))
def test_the_starter_answers_from_the_knowledge_base(api_client, user, key, handbook, embedder, scripted, name):
    knowledge, agent = STARTERS[name]
    flow = imported(user, name)
    response = run(api_client, flow, key, {knowledge: {"knowledge_base": handbook, "top_k": 1}})
    assert response.status_code == 200, response.json()
    assert embedder.texts[-1] == QUESTION  # the question was embedded with the base's model
    if agent is None:
        assert answer(response).startswith("Text: Vacation policy: employees get twenty five days")
        assert scripted.requests == []
        return
    assert answer(response) == "Employees get twenty five days."
    [request] = scripted.requests
    asked = "\n".join(str(message["content"]) for message in request["messages"] if message["role"] == "user")
    assert "Text: Vacation policy: employees get twenty five days" in asked and QUESTION in asked
    assert "Expense policy" not in asked  # top_k 1: only the closest chunk


@pytest.mark.parametrize("name", sorted(STARTERS))
def test_the_starter_as_exported_names_no_base_and_is_a_422_before_any_call(api_client, user, key, embedder,
                                                                          scripted, name):
    knowledge, _ = STARTERS[name]
    response = run(api_client, imported(user, name), key, {})
    assert response.status_code == 422
    assert response.json()["node_ids"] == [knowledge] and "POST /api/v1/knowledge_bases" in response.json()["detail"]
    assert embedder.requests == [] and scripted.requests == []
