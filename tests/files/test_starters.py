"""Langflow's starters that read or write files, as exported, against a scripted model server."""

import copy
import json

import pytest

from files.models import UserFile
from files.storage import file_storage
from flows import services as flow_services
from tests.flows.conftest import load_fixture
from tests.flows.graphs import chat_in, chat_out, edge, flow_data
from tests.flows.scripted_model import ScriptedModelServer

from .conftest import make_docx, make_pdf, upload

pytestmark = pytest.mark.django_db

RESUME = "Ada Lovelace, analyst. Wrote the first program for the Analytical Engine."


@pytest.fixture
def scripted(settings):
    with ScriptedModelServer() as server:
        settings.OPENAI_BASE_URL = server.base_url
        yield server


def imported(user, name):
    [flow] = flow_services.import_flows(user=user, payload=load_fixture(f"starters/{name}"))
    return flow


def starter_node(name: str, node_type: str) -> dict:
    nodes = load_fixture(f"starters/{name}")["data"]["nodes"]
    return copy.deepcopy(next(node for node in nodes if node["data"].get("type") == node_type))


def run(api_client, flow, key, tweaks, input_value=""):
    return api_client.post(f"/api/v1/run/{flow.pk}", {"input_value": input_value, "tweaks": tweaks}, format="json",
                           HTTP_X_API_KEY=key)


def user_texts(request_body: dict) -> str:
    return "\n".join(str(message.get("content")) for message in request_body["messages"] if message["role"] == "user")


def test_portfolio_website_code_generator_reads_the_uploaded_resume(api_client, user, key, scripted):
    flow = imported(user, "Portfolio Website Code Generator.json")
    resume = upload(api_client, key, "resume.pdf", make_pdf(RESUME)).json()
    scripted.responder = lambda body: {"content": "<html>Ada</html>"}
    response = run(api_client, flow, key, {"File-wvfA7": {"path": [resume["path"]]}})
    assert response.status_code == 200, response.json()
    assert response.json()["outputs"][0]["outputs"][0]["results"]["message"]["text"] == "<html>Ada</html>"
    [request] = scripted.requests
    assert RESUME in user_texts(request)


def test_text_sentiment_analysis_sends_the_file_to_both_agents_that_read_it(api_client, user, key, scripted):
    flow = imported(user, "Text Sentiment Analysis.json")
    review = upload(api_client, key, "review.docx", make_docx("The product is great.", "Delivery was slow.")).json()
    scripted.responder = lambda body: {"content": "positive"}
    response = run(api_client, flow, key, {"File-a3YoT": {"path": review["id"]}}, input_value="")
    assert response.status_code == 200, response.json()
    readers = [request for request in scripted.requests if "Delivery was slow." in user_texts(request)]
    assert len(readers) == 2  # Agent-tsa-a and Agent-tsa-c read the file; Agent-tsa-b reads a summary


def test_a_starter_whose_file_is_missing_is_a_422_naming_its_file_node(api_client, user, key, scripted):
    flow = imported(user, "Portfolio Website Code Generator.json")
    response = run(api_client, flow, key, {"File-wvfA7": {"path": ["resume.pdf"]}})
    assert response.status_code == 422
    assert response.json()["node_ids"] == ["File-wvfA7"]
    assert scripted.requests == []  # refused before any model call


def test_the_financial_report_parsers_file_node_as_exported(api_client, user, key):
    file_node = starter_node("Financial Report Parser.json", "File")
    flow = flow_services.create_flow(owner=user, name="Report", data=flow_data(
        file_node, chat_out(), edge(file_node["id"], "message", "ChatOutput-1", "input_value")))
    report = upload(api_client, key, "q3.pdf", make_pdf("EBITDA 1.2M", "Net income 0.4M")).json()
    response = run(api_client, flow, key, {file_node["id"]: {"path": "q3.pdf"}})
    assert response.status_code == 200, response.json()
    assert response.json()["outputs"][0]["outputs"][0]["results"]["message"]["text"] == "EBITDA 1.2M\n\nNet income 0.4M"
    assert report["name"] == "q3"


def test_the_content_aggregators_save_file_node_as_exported(api_client, user, key):
    save_node = starter_node("Content Aggregator.json", "SaveToFile")
    flow = flow_services.create_flow(owner=user, name="Aggregate", data=flow_data(
        chat_in(), save_node, chat_out(),
        edge("ChatInput-1", "message", save_node["id"], "input"),
        edge(save_node["id"], "message", "ChatOutput-1", "input_value")))
    response = run(api_client, flow, key, {}, input_value="Three stories today.")
    assert response.status_code == 200, response.json()
    saved = UserFile.objects.get(owner=user)
    assert saved.filename == "news-aggregated.json"  # the export's file_name and local_format
    with file_storage().open(saved.path) as handle:
        assert json.loads(handle.read()) == {"message": "Three stories today."}
    assert response.json()["outputs"][0]["outputs"][0]["results"]["message"]["text"].endswith(saved.path)
