"""The Web Search component (UnifiedWebSearch) against a SearXNG-compatible stub on loopback:
no backend (422 before the run), Web and News results, RSS feeds, bounds, bad answers."""

import asyncio
import json
import time

import pytest

from flows import services
from flows.engine import ComponentError, RunRequest, UpstreamError, check_plan, compile_graph, plan_run, run_to_end, tools
from flows.engine.components.base import RunContext
from tests.flows.conftest import load_fixture
from tests.flows.graphs import chat_in, chat_out, edge, flow_data, node
from tests.flows.web_stubs import Page, html

NODE = "WebSearch-1"


def search_node(query="langflow", **values):
    fields = dict(search_mode="Web", hl="", gl="", ceid="US:en", topic="", location="", timeout=5,
                  max_results=5, max_content_length=2000)
    fields.update(values)
    return node(NODE, "UnifiedWebSearch", "Web Search", query=query, **fields)


def run(data, **request):
    async def go():
        plan = plan_run(compile_graph(data), RunRequest(output_type="debug", **request), flow_id="flow-1")
        await check_plan(plan)
        return await run_to_end(plan)

    return {item.node.id: item.value for item in asyncio.run(go()).outputs}


def search(query="langflow", **values) -> list[dict]:
    return run(flow_data(search_node(query, **values)))[NODE]


@pytest.fixture
def backend(web, settings):
    """The stub's /search as WEB_SEARCH_URL, and its pages allowed (result pages are read)."""
    settings.WEB_SEARCH_URL = web.search_url
    settings.URL_ALLOWED_PREFIXES = [web.origin]
    return web


def result(web, name, **extra):
    return {"title": f"Title {name}", "url": web.url(f"/{name}"), "content": f"snippet of {name}", **extra}


# --- No backend -------------------------------------------------------------------------------------------

def test_without_a_backend_the_run_is_refused_before_it_starts_naming_the_node(web):
    with pytest.raises(ComponentError) as error:
        search()
    assert error.value.status_code == 422 and error.value.node_ids == (NODE,)
    assert "WEB_SEARCH_URL" in str(error.value) and NODE in str(error.value)
    assert web.requests == []


@pytest.mark.django_db
def test_without_a_backend_a_streamed_run_answers_422_not_an_error_event(api_client, user, key, web):
    data = flow_data(chat_in(), search_node(query=""), chat_out(),
                     edge("ChatInput-1", "message", NODE, "query"), edge(NODE, "results", "ChatOutput-1", "input_value"))
    [flow] = services.import_flows(user=user, payload={"name": "search", "data": data})
    response = api_client.post(f"/api/v1/run/{flow.pk}?stream=true", {"input_value": "news"}, format="json",
                               HTTP_X_API_KEY=key)
    assert response.status_code == 422
    assert NODE in response.json()["detail"] and "WEB_SEARCH_URL" in response.json()["detail"]


def test_as_an_agents_tool_the_starters_search_node_is_refused_too_without_a_backend(web):
    data = load_fixture("simple_agent.json")["data"]
    plan = plan_run(compile_graph(data), RunRequest(input_value="hi"), flow_id="flow-1")
    with pytest.raises(ComponentError) as error:
        asyncio.run(check_plan(plan))
    assert "UnifiedWebSearch-KZ8k6" in str(error.value) and "WEB_SEARCH_URL" in str(error.value)


def test_rss_mode_needs_no_backend(allowed_web):
    allowed_web.pages["/feed.xml"] = Page(RSS, content_type="application/rss+xml")
    rows = search(allowed_web.url("/feed.xml"), search_mode="RSS")
    assert [row["title"] for row in rows] == ["First & best", "Second"]


# --- Web and News -----------------------------------------------------------------------------------------

def test_web_results_are_langflows_rows_with_each_pages_text_as_content(backend):
    backend.results = [result(backend, "a"), result(backend, "b")]
    backend.pages["/a"] = Page(html("A", "<p>Page A text</p><script>x()</script>"))
    rows = search("what is langflow")
    assert rows[0] == {"title": "Title a", "link": backend.url("/a"), "snippet": "snippet of a",
                       "content": "Page A text", "text": f"Title a\n{backend.url('/a')}\nPage A text"}
    assert rows[1]["content"] == "snippet of b"  # its page is a 404: the snippet stands
    [asked] = [request for request in backend.requests if request["path"] == "/search"]
    assert asked["query"] == {"q": ["what is langflow"], "format": ["json"], "categories": ["general"]}


def test_news_mode_asks_for_news_and_gives_published_and_summary(backend):
    backend.results = [result(backend, "n", publishedDate="2026-01-02T03:04:05", content="<b>Big</b> news")]
    [row] = search("elections", search_mode="News", hl="fr")
    assert row == {"title": "Title n", "link": backend.url("/n"), "published": "2026-01-02T03:04:05",
                   "summary": "Big news", "text": f"Title n\n{backend.url('/n')}\n2026-01-02T03:04:05\nBig news"}
    assert backend.requests[0]["query"]["categories"] == ["news"]
    assert backend.requests[0]["query"]["language"] == ["fr"]
    assert backend.paths() == ["/search"]  # news results are not fetched


def test_results_are_capped_by_max_results_and_by_the_operator(backend, settings):
    backend.results = [result(backend, str(number)) for number in range(8)]
    assert len(search(max_results=3, search_mode="News")) == 3
    settings.WEB_SEARCH_MAX_RESULTS = 2
    assert len(search(max_results=5, search_mode="News")) == 2


def test_content_is_cut_at_max_content_length(backend):
    backend.results = [result(backend, "long", content="word " * 1000)]
    [row] = search(max_content_length=50, search_mode="News")
    assert len(row["summary"]) == 50


def test_result_pages_on_private_addresses_are_never_fetched(web, settings):
    settings.WEB_SEARCH_URL = web.search_url  # the backend is the operator's; its results are not
    web.results = [result(web, "internal"), {"title": "meta", "url": "http://169.254.169.254/", "content": "m"}]
    web.pages["/internal"] = Page(html("secret", "internal data"))
    rows = search()
    assert [row["content"] for row in rows] == ["snippet of internal", "m"]
    assert web.paths() == ["/search"]


def test_results_without_an_http_url_are_skipped(backend):
    backend.results = [{"title": "x", "url": "javascript:alert(1)"}, "junk", {"title": "y"},
                       result(backend, "ok")]
    assert [row["title"] for row in search(search_mode="News")] == ["Title ok"]


def test_the_query_is_required(backend):
    with pytest.raises(ComponentError) as error:
        search("  ")
    assert "'query'" in str(error.value) and backend.requests == []


# --- Bad answers and bounds --------------------------------------------------------------------------------

@pytest.mark.parametrize("answer, status", [
    (b"<html>not json</html>", 200), (b'{"results": "none"}', 200), (b"[1, 2]", 200),
    (b"[" * 100_000 + b"]" * 100_000, 200), (b'{"results": []}', 500),
], ids=["html", "results-not-a-list", "not-an-object", "deeply-nested", "http-500"])
def test_a_bad_answer_from_the_backend_fails_the_node_with_502(backend, answer, status):
    backend.search_answer, backend.search_status = answer, status
    with pytest.raises(UpstreamError) as error:
        search()
    assert error.value.status_code == 502 and NODE in str(error.value)
    assert "not json" not in str(error.value)


def test_an_answer_larger_than_the_cap_fails_without_being_read_whole(backend, settings):
    settings.WEB_SEARCH_MAX_RESPONSE_BYTES = 10_000
    backend.results = [result(backend, str(number), content="z" * 1000) for number in range(50)]
    with pytest.raises(UpstreamError) as error:
        search()
    assert "larger than 10,000 bytes" in str(error.value)


def test_a_result_page_that_hangs_keeps_its_snippet_and_the_search_ends_on_time(backend):
    backend.results = [result(backend, "slow")]
    backend.pages["/slow"] = Page(html("slow", "never"), hang=True)
    started = time.monotonic()
    rows = search(timeout=1)
    assert rows[0]["content"] == "snippet of slow" and time.monotonic() - started < 4


def test_a_search_that_hangs_fails_with_502_on_time(web, settings):
    web.pages["/hanging-search"] = Page(b"{}", content_type="application/json", hang=True)
    settings.WEB_SEARCH_URL = web.url("/hanging-search")
    started = time.monotonic()
    with pytest.raises(UpstreamError) as error:
        search(timeout=0.5)
    assert "no answer within" in str(error.value) and time.monotonic() - started < 3


def test_the_backend_is_never_redirected(backend, settings):
    settings.WEB_SEARCH_URL = backend.url("/moved")
    backend.pages["/moved"] = Page(status=302, headers={"Location": "http://169.254.169.254/"})
    with pytest.raises(UpstreamError) as error:
        search()
    assert "redirect" in str(error.value)


# --- RSS --------------------------------------------------------------------------------------------------

RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Feed</title>
<item><title>First &amp; best</title><link>http://example.com/1</link><pubDate>Mon, 01 Jan 2026</pubDate>
<description>&lt;p&gt;Hello &lt;b&gt;world&lt;/b&gt;&lt;/p&gt;</description></item>
<item><title>Second</title><link>http://example.com/2</link></item></channel></rss>"""


def test_an_rss_feed_becomes_rows_with_its_summary_as_text(allowed_web):
    allowed_web.pages["/feed.xml"] = Page(RSS, content_type="application/rss+xml")
    first, second = search(allowed_web.url("/feed.xml"), search_mode="RSS")
    assert first == {"title": "First & best", "link": "http://example.com/1", "published": "Mon, 01 Jan 2026",
                     "summary": "Hello world",
                     "text": "First & best\nhttp://example.com/1\nMon, 01 Jan 2026\nHello world"}
    assert second["summary"] == "" and second["published"] == ""


def test_an_atom_feed_is_read_too(allowed_web):
    allowed_web.pages["/atom"] = Page(b"""<feed xmlns="http://www.w3.org/2005/Atom"><entry><title>Atom</title>
        <link href="http://example.com/a"/><updated>2026-02-03</updated><summary>S</summary></entry></feed>""",
                                      content_type="application/atom+xml")
    [row] = search(allowed_web.url("/atom"), search_mode="RSS")
    assert (row["title"], row["link"], row["published"], row["summary"]) == ("Atom", "http://example.com/a",
                                                                             "2026-02-03", "S")


@pytest.mark.parametrize("body", [
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><rss>&b;</rss>',
    b"<rss><channel><item>", b"<html><body>not a feed</body></html>",
], ids=["entities", "broken", "not-a-feed"])
def test_a_feed_with_entities_or_that_is_no_feed_fails_with_502(allowed_web, body):
    allowed_web.pages["/bad"] = Page(body, content_type="application/xml")
    with pytest.raises(UpstreamError) as error:
        search(allowed_web.url("/bad"), search_mode="RSS")
    assert "the feed" in str(error.value) and NODE in str(error.value)


def test_a_feed_on_a_private_address_is_refused_without_the_allow_list(web):
    web.pages["/feed.xml"] = Page(RSS, content_type="application/rss+xml")
    with pytest.raises(ComponentError) as error:
        search(web.url("/feed.xml"), search_mode="RSS")
    assert "'query'" in str(error.value) and "URL_ALLOWED_PREFIXES" in str(error.value)
    assert web.requests == []


def test_a_feed_larger_than_the_cap_fails(allowed_web, settings):
    settings.WEB_SEARCH_MAX_RESPONSE_BYTES = 500
    allowed_web.pages["/feed.xml"] = Page(RSS * 3, content_type="application/rss+xml")
    with pytest.raises(UpstreamError) as error:
        search(allowed_web.url("/feed.xml"), search_mode="RSS")
    assert "larger than 500 bytes" in str(error.value)


# --- As an agent's tool -------------------------------------------------------------------------------------

def test_as_a_tool_it_is_langflows_perform_search_taking_query_and_mode(backend):
    backend.results = [result(backend, "t")]
    raw = next(item for item in load_fixture("simple_agent.json")["data"]["nodes"]
               if item["data"]["type"] == "UnifiedWebSearch")
    graph = compile_graph({"nodes": [raw], "edges": []})
    component = graph.nodes[raw["id"]].component
    [spec] = tools.tool_specs(raw, component)
    assert spec.name == "perform_search" and {"query", "search_mode"} <= spec.arguments
    tool = tools.Tool(spec=spec, node=graph.nodes[raw["id"]], params=graph.nodes[raw["id"]].params)
    context = RunContext(flow_id="flow-1", session_id="s", stream=False)
    answer = asyncio.run(tool.call(json.dumps({"query": "tools", "search_mode": "News"}), context))
    assert not answer.failed
    assert json.loads(answer.text)[0]["title"] == "Title t"
    assert backend.requests[0]["query"]["q"] == ["tools"]
