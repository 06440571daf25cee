"""The arXiv component (ArXivComponent) against a stand-in for arXiv's Atom API on loopback:
the rows Langflow gives, the query it sends, the egress rules, and what a bad answer does."""

import asyncio
import time

import pytest

from flows import services
from flows.engine import ComponentError, RunRequest, UpstreamError, check_plan, compile_graph, plan_run, run_to_end, tools
from flows.engine.components.arxiv import ArXiv
from flows.engine.components.base import RunContext
from tests.flows.arxiv_stub import PAPERS, PATH, arxiv_feed, serve_papers
from tests.flows.graphs import chat_in, chat_out, edge, flow_data, node
from tests.flows.web_stubs import Page

NODE = "ArXivComponent-1"


def arxiv_node(query="translation", **values):
    fields = {"search_type": "all", "max_results": 10, **values}
    return node(NODE, "ArXivComponent", "arXiv", search_query=query, **fields)


def run(data, **request):
    async def go():
        plan = plan_run(compile_graph(data), RunRequest(output_type="debug", **request), flow_id="flow-1")
        await check_plan(plan)
        return await run_to_end(plan)

    return {item.node.id: item.value for item in asyncio.run(go()).outputs}


def search(query="translation", **values) -> list[dict]:
    return run(flow_data(arxiv_node(query, **values)))[NODE]


def sent_query(web) -> dict:
    [request] = [request for request in web.requests if request["path"] == PATH]
    return {name: values[0] for name, values in request["query"].items()}


# --- Searching ----------------------------------------------------------------------------------------------

def test_the_papers_come_back_as_langflows_rows(arxiv):
    first, second = search()
    assert first["id"] == "http://arxiv.org/abs/2401.00001v1"
    assert first["title"] == "Attention Is All You Translate"  # arXiv's wrapped title on one line
    assert first["summary"] == "We translate papers.\n  Twice."  # stripped only, as Langflow does
    assert first["authors"] == ["Ada Lovelace", "Alan Turing"]
    assert first["published"] == first["updated"] == "2024-01-01T00:00:00Z"
    assert first["arxiv_url"] == "http://arxiv.org/abs/2401.00001v1"
    assert first["pdf_url"] == "http://arxiv.org/pdf/2401.00001v1"
    assert (first["primary_category"], first["categories"]) == ("cs.CL", ["cs.CL", "cs.AI"])
    assert (first["comment"], first["journal_ref"]) == ("10 pages", None)
    assert second["journal_ref"] == "J. Loops 1 (2024)" and second["comment"] is None
    assert first["text"].startswith("Attention Is All You Translate\nAda Lovelace, Alan Turing\n2024-01-01")


def test_the_query_is_sent_as_langflow_sends_it(arxiv):
    search("machine   translation", max_results=3)
    assert sent_query(arxiv) == {"search_query": "machine translation", "start": "0", "max_results": "3"}


@pytest.mark.parametrize(("search_type", "prefix"), [("title", "ti:"), ("abstract", "abs:"), ("author", "au:"),
                                                     ("cat", "cat:")])
def test_a_search_field_becomes_arxivs_prefix(arxiv, search_type, prefix):
    search("Lovelace", search_type=search_type)
    assert sent_query(arxiv)["search_query"] == f"{prefix}Lovelace"


def test_max_results_is_lowered_to_the_servers_cap_and_honoured(arxiv, settings):
    settings.ARXIV_MAX_RESULTS = 1
    rows = search(max_results=500)
    assert sent_query(arxiv)["max_results"] == "1"
    assert len(rows) == 1  # even if the API sends more


def test_the_query_comes_from_chat_input_and_the_rows_reach_chat_output(arxiv):
    output = chat_out()
    output["data"]["node"]["template"]["data_template"]["value"] = "{title}"
    data = flow_data(chat_in(), arxiv_node(query=""), output,
                     edge("ChatInput-1", "message", NODE, "search_query"),
                     edge(NODE, "dataframe", "ChatOutput-1", "input_value"))
    outputs = run(data, input_value="quantum loops")
    assert sent_query(arxiv)["search_query"] == "quantum loops"
    assert outputs["ChatOutput-1"].text == "Attention Is All You Translate\nLoops Considered Helpful"


# --- As an Agent's tool -----------------------------------------------------------------------------------

def test_as_a_tool_the_model_chooses_the_query(arxiv):
    raw = arxiv_node(query="")
    raw["data"]["node"]["template"]["search_query"]["tool_mode"] = True
    [spec] = tools.tool_specs(raw, ArXiv)
    assert spec.name == "search_papers_dataframe"
    assert spec.definition()["function"]["parameters"]["properties"].keys() == {"search_query"}
    graph = compile_graph(flow_data(raw))
    tool = tools.Tool(spec=spec, node=graph.nodes[NODE], params=graph.nodes[NODE].params)
    result = asyncio.run(tool.call('{"search_query": "loops"}', RunContext(flow_id="f", session_id="s", stream=False)))
    assert sent_query(arxiv)["search_query"] == "loops"
    assert "Attention Is All You Translate" in result.text and not result.failed


# --- Refusals and failures ----------------------------------------------------------------------------------

def test_a_private_api_url_the_operator_did_not_allow_is_refused_before_the_run(web, settings):
    settings.ARXIV_API_URL = web.url(PATH)
    serve_papers(web, PAPERS)
    with pytest.raises(ComponentError) as error:
        search()
    assert error.value.status_code == 422 and error.value.node_ids == (NODE,)
    assert "ARXIV_API_URL" in str(error.value) and "URL_ALLOWED_PREFIXES" in str(error.value)
    assert web.requests == []


def test_a_redirect_outside_what_the_operator_allowed_is_refused(arxiv, settings):
    settings.URL_ALLOWED_PREFIXES = [arxiv.url(PATH)]
    arxiv.pages[PATH] = Page(status=302, headers={"Location": arxiv.url("/elsewhere")})
    with pytest.raises(ComponentError) as error:
        search()
    assert "URL_ALLOWED_PREFIXES" in str(error.value) and NODE in str(error.value)
    assert "/elsewhere" not in arxiv.paths()


@pytest.mark.parametrize("query", ["", "   "])
def test_an_empty_query_is_a_422_naming_the_field(arxiv, query):
    with pytest.raises(ComponentError, match="search_query"):
        search(query)
    assert arxiv.requests == []


def test_an_unknown_search_field_is_a_422(arxiv):
    with pytest.raises(ComponentError, match="search_type"):
        search(search_type="everything")


@pytest.mark.parametrize(("page", "reason"), [
    (Page(status=503, body="busy"), "HTTP 503"),
    (Page(body="<html><p>unclosed</html>", content_type="text/html"), "not well-formed"),
    (Page(body="<rss><channel/></rss>", content_type="application/xml"), "not an Atom feed"),
    (Page(body='<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY a "aaaaaaaaaa">]>'
               '<feed xmlns="http://www.w3.org/2005/Atom"><entry><title>&a;</title></entry></feed>'),
     "DTD or entities"),
])
def test_a_bad_answer_is_a_502_naming_the_node(arxiv, page, reason):
    arxiv.pages[PATH] = page
    with pytest.raises(UpstreamError) as error:
        search()
    assert error.value.status_code == 502 and NODE in str(error.value) and reason in str(error.value)


def test_arxivs_own_error_entry_is_reported(arxiv):
    arxiv.pages[PATH] = Page(body=arxiv_feed([]).replace("</feed>", (
        "<entry><id>http://arxiv.org/api/errors#incorrect_id_format</id><title>Error</title>"
        "<summary>incorrect id format for 1234</summary></entry></feed>")))
    with pytest.raises(UpstreamError, match="incorrect id format for 1234"):
        search()


def test_an_answer_past_the_size_cap_fails(arxiv, settings):
    settings.ARXIV_MAX_RESPONSE_BYTES = 1000
    with pytest.raises(UpstreamError, match="larger than 1,000 bytes"):
        search()


def test_a_server_that_never_answers_fails_at_the_deadline(arxiv, settings):
    settings.ARXIV_TIMEOUT = 0.5
    arxiv.pages[PATH] = Page(body="<feed/>", hang=True)
    started = time.monotonic()
    with pytest.raises(UpstreamError, match="no answer within"):
        search()
    assert time.monotonic() - started < 3


# --- Over the API -------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_failing_arxiv_is_a_502_json_answer_over_the_api(api_client, user, key, arxiv):
    arxiv.pages[PATH] = Page(status=500)
    data = flow_data(chat_in(), arxiv_node(query=""), chat_out(),
                     edge("ChatInput-1", "message", NODE, "search_query"),
                     edge(NODE, "dataframe", "ChatOutput-1", "input_value"))
    [flow] = services.import_flows(user=user, payload={"name": "papers", "data": data})
    response = api_client.post(f"/api/v1/run/{flow.pk}", {"input_value": "loops"}, format="json", HTTP_X_API_KEY=key)
    assert response.status_code == 502
    assert response.json()["detail"] == f"arXiv search failed in node {NODE}: the arXiv API answered HTTP 500"
