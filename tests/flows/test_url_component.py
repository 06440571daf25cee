"""The URL component (URLComponent) against a page server on loopback: text from HTML, formats,
the egress rules (allow list, private addresses, redirects), the size cap, the deadline, the crawl."""

import asyncio
import json
import time

import pytest

from flows.engine import ComponentError, RunRequest, UpstreamError, check_plan, compile_graph, plan_run, run_to_end, tools
from flows.engine.components.base import RunContext
from tests.flows.conftest import load_fixture
from tests.flows.graphs import chat_out, edge, flow_data, node
from tests.flows.web_stubs import Page, html

NODE = "URL-1"


def url_node(urls, **values):
    fields = dict(max_depth=1, prevent_outside=True, use_async=True, format="Text", timeout=30,
                  headers=[{"key": "User-Agent", "value": "langflow"}], filter_text_html=True,
                  continue_on_failure=True, check_response_status=False, autoset_encoding=True)
    fields.update(values)
    return node(NODE, "URLComponent", "URL", urls=urls, **fields)


def run(data, **request):
    """Check and run ``data``; return {node id: value} of every node (debug output)."""

    async def go():
        plan = plan_run(compile_graph(data), RunRequest(output_type="debug", **request), flow_id="flow-1")
        await check_plan(plan)
        return await run_to_end(plan)

    return {item.node.id: item.value for item in asyncio.run(go()).outputs}


def pages_of(urls, **values) -> list[dict]:
    return run(flow_data(url_node(urls, **values)))[NODE]


PAGE = html("A page", """<h1>Welcome</h1><script>var secret = "never shown";</script>
<style>p { color: red }</style><p>Some <b>bold</b> words.</p><noscript>no script</noscript>
<ul><li>one</li><li>two</li></ul>""")


def test_a_page_becomes_langflows_row_with_its_text_and_without_scripts_or_styles(allowed_web):
    allowed_web.pages["/page"] = Page(PAGE.replace("<title>", "<meta name='description' content='About'><title>"))
    [row] = pages_of([allowed_web.url("/page")])
    assert row["text"] == "Welcome\nSome bold words.\none\ntwo"
    assert row["url"] == allowed_web.url("/page")
    assert row["title"] == "A page" and row["description"] == "About" and row["language"] == "en"
    assert row["content_type"] == "text/html; charset=utf-8"
    assert "secret" not in json.dumps(row) and "color" not in row["text"]
    assert allowed_web.requests[0]["headers"]["User-Agent"] == "langflow"


def test_the_message_output_joins_the_pages_texts(allowed_web):
    allowed_web.pages["/one"] = Page(html("1", "<p>first</p>"))
    allowed_web.pages["/two"] = Page("plain text", content_type="text/plain")
    data = flow_data(url_node([allowed_web.url("/one"), allowed_web.url("/two")]), chat_out(),
                     edge(NODE, "raw_results", "ChatOutput-1", "input_value"))
    assert run(data)["ChatOutput-1"].text == "first\n\nplain text"


def test_markdown_keeps_headings_lists_and_absolute_links_and_html_is_the_page_as_it_came(allowed_web):
    allowed_web.pages["/doc/page"] = Page(html("Doc", "<h2>Title</h2><ul><li>item</li></ul><a href='next'>on</a>"))
    [markdown] = pages_of([allowed_web.url("/doc/page")], format="Markdown")
    assert "## Title" in markdown["text"] and "- item" in markdown["text"]
    assert f"[on]({allowed_web.url('/doc/next')})" in markdown["text"]
    [raw] = pages_of([allowed_web.url("/doc/page")], format="HTML")
    assert raw["text"] == html("Doc", "<h2>Title</h2><ul><li>item</li></ul><a href='next'>on</a>")


def test_the_pages_charset_is_honoured(allowed_web):
    allowed_web.pages["/latin"] = Page("<html><head><meta charset='windows-1252'></head><body>Caf\xe9</body></html>"
                                       .encode("windows-1252"), content_type="text/html")
    assert pages_of([allowed_web.url("/latin")])[0]["text"] == "Café"


def test_a_text_given_with_several_urls_and_without_scheme_is_split(allowed_web):
    allowed_web.pages["/a"] = Page(html("a", "A"))
    allowed_web.pages["/b"] = Page(html("b", "B"))
    rows = pages_of(f"{allowed_web.url('/a')}, {allowed_web.url('/b')}")
    assert [row["text"] for row in rows] == ["A", "B"]


# --- Where it may connect --------------------------------------------------------------------------

def test_a_loopback_address_is_refused_before_the_run_without_the_allow_list(web):
    web.pages["/page"] = Page(PAGE)
    with pytest.raises(ComponentError) as error:
        pages_of([web.url("/page")])
    assert NODE in str(error.value) and "'urls'" in str(error.value)
    assert "URL_ALLOWED_PREFIXES" in str(error.value)
    assert web.requests == []


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data", "http://10.0.0.1/", "http://[::1]/",
                                 "file:///etc/passwd", "http://user:pw@example.com/", "ftp://example.com/"])
def test_private_addresses_and_other_schemes_are_refused_naming_the_node(web, url):
    with pytest.raises(ComponentError) as error:
        pages_of([url])
    assert error.value.node_ids == (NODE,) and "'urls'" in str(error.value)
    assert "pw" not in str(error.value) or "user name or password" in str(error.value)


def test_a_host_name_that_resolves_to_a_private_address_is_refused_where_it_connects(web):
    web.pages["/page"] = Page(PAGE)
    port = web.httpd.server_address[1]
    with pytest.raises(ComponentError) as error:
        pages_of([f"http://localhost:{port}/page"])
    assert "resolves to a non-public address" in str(error.value)
    assert "URL_ALLOWED_PREFIXES" in str(error.value) and NODE in str(error.value)
    assert web.requests == []


def test_a_redirect_out_of_the_allowed_prefix_to_a_private_address_is_refused(web, settings):
    settings.URL_ALLOWED_PREFIXES = [web.url("/open")]
    web.pages["/open/start"] = Page(status=302, headers={"Location": web.url("/secret")})
    web.pages["/secret"] = Page(html("secret", "internal data"))
    with pytest.raises(ComponentError) as error:
        pages_of([web.url("/open/start")])
    assert "redirect" not in web.paths() and web.paths() == ["/open/start"]
    assert "non-public" in str(error.value) and NODE in str(error.value)


@pytest.mark.parametrize("location", ["http://169.254.169.254/", "file:///etc/passwd", "gopher://x/"])
def test_a_redirect_to_the_metadata_address_or_another_scheme_is_refused(allowed_web, location):
    allowed_web.pages["/start"] = Page(status=301, headers={"Location": location})
    with pytest.raises(ComponentError) as error:
        pages_of([allowed_web.url("/start")])
    assert NODE in str(error.value)
    assert allowed_web.paths() == ["/start"]


def test_redirects_within_the_rules_are_followed_and_the_row_names_where_the_page_came_from(allowed_web):
    allowed_web.pages["/old"] = Page(status=302, headers={"Location": "/new"})
    allowed_web.pages["/new"] = Page(html("new", "moved here"))
    [row] = pages_of([allowed_web.url("/old")])
    assert row["text"] == "moved here" and row["url"] == allowed_web.url("/new")


def test_a_redirect_loop_stops(allowed_web):
    allowed_web.pages["/loop"] = Page(status=302, headers={"Location": "/loop"})
    with pytest.raises(UpstreamError) as error:
        pages_of([allowed_web.url("/loop")])
    assert "redirects" in str(error.value) and NODE in str(error.value)
    assert len(allowed_web.requests) == 6


# --- Size and time -------------------------------------------------------------------------------------

@pytest.mark.parametrize("page", [
    Page("x" * 5000, content_type="text/plain"),  # with a Content-Length
    Page("x" * 5000, content_type="text/plain", chunks=10),  # without one
    Page("\0" * 10_000_000, content_type="text/plain", gzip=True),  # 10 MB from about 10 KB
], ids=["declared", "streamed", "gzip-bomb"])
def test_a_page_larger_than_the_cap_fails_naming_the_node(allowed_web, settings, page):
    settings.URL_MAX_PAGE_BYTES = 1000
    allowed_web.pages["/big"] = page
    with pytest.raises(UpstreamError) as error:
        pages_of([allowed_web.url("/big")])
    assert "larger than 1,000 bytes" in str(error.value) and NODE in str(error.value)


def test_a_compressed_page_within_the_cap_is_read(allowed_web):
    allowed_web.pages["/gz"] = Page(html("gz", "squeezed"), gzip=True)
    assert pages_of([allowed_web.url("/gz")])[0]["text"] == "squeezed"


def test_a_page_that_never_finishes_fails_at_the_deadline(allowed_web, settings):
    settings.URL_FETCH_TIMEOUT = 0.5
    allowed_web.pages["/hang"] = Page(html("h", "never complete"), hang=True)
    started = time.monotonic()
    with pytest.raises(UpstreamError) as error:
        pages_of([allowed_web.url("/hang")])
    assert time.monotonic() - started < 3
    assert "no answer within" in str(error.value) and NODE in str(error.value)


def test_the_nodes_own_timeout_bounds_each_page_and_other_pages_still_come(allowed_web):
    allowed_web.pages["/hang"] = Page(html("h", "x"), hang=True)
    allowed_web.pages["/ok"] = Page(html("ok", "fine"))
    started = time.monotonic()
    rows = pages_of([allowed_web.url("/hang"), allowed_web.url("/ok")], timeout=0.5)
    assert [row["text"] for row in rows] == ["fine"] and time.monotonic() - started < 3


def test_without_continue_on_failure_a_failing_page_fails_the_node(allowed_web):
    allowed_web.pages["/ok"] = Page(html("ok", "fine"))
    urls = [allowed_web.url("/missing"), allowed_web.url("/ok")]
    assert [row["text"] for row in pages_of(urls, check_response_status=True)] == ["fine"]
    with pytest.raises(UpstreamError) as error:
        pages_of(urls, check_response_status=True, continue_on_failure=False)
    assert "HTTP 404" in str(error.value)


def test_pages_that_are_not_text_are_left_out(allowed_web):
    allowed_web.pages["/image"] = Page(b"\x89PNG\r\n", content_type="image/png")
    allowed_web.pages["/ok"] = Page(html("ok", "fine"))
    rows = pages_of([allowed_web.url("/image"), allowed_web.url("/ok")])
    assert [row["url"] for row in rows] == [allowed_web.url("/ok")]


def test_the_pages_together_are_held_to_the_value_limit(allowed_web, settings):
    settings.FLOW_MAX_VALUE_BYTES = 1500
    for name in ("a", "b"):
        allowed_web.pages[f"/{name}"] = Page("y" * 1000, content_type="text/plain")
    with pytest.raises(Exception) as error:
        pages_of([allowed_web.url("/a"), allowed_web.url("/b")])
    assert "FLOW_MAX_VALUE_BYTES" in str(error.value) and NODE in str(error.value)


# --- The crawl --------------------------------------------------------------------------------------------

def site(web):
    web.pages["/docs/"] = Page(html("root", "<a href='a'>A</a> <a href='/docs/b#top'>B</a> "
                                            "<a href='http://other.example/'>out</a> <a href='/blog/'>blog</a>"))
    web.pages["/docs/a"] = Page(html("a", "page a <a href='c'>C</a> <a href='/docs/'>back</a>"))
    web.pages["/docs/b"] = Page(html("b", "page b"))
    web.pages["/docs/c"] = Page(html("c", "page c"))
    web.pages["/blog/"] = Page(html("blog", "blog"))


def test_depth_1_fetches_only_the_given_pages(allowed_web):
    site(allowed_web)
    pages_of([allowed_web.url("/docs/")])
    assert allowed_web.paths() == ["/docs/"]


def test_depth_2_follows_the_links_within_the_first_urls_folder_once_each(allowed_web):
    site(allowed_web)
    rows = pages_of([allowed_web.url("/docs/")], max_depth=2)
    assert sorted(allowed_web.paths()) == ["/docs/", "/docs/a", "/docs/b"]
    assert [row["title"] for row in rows] == ["root", "a", "b"]


def test_depth_3_goes_one_link_further_and_never_twice_to_a_page(allowed_web):
    site(allowed_web)
    pages_of([allowed_web.url("/docs/")], max_depth=3)
    assert sorted(allowed_web.paths()) == ["/docs/", "/docs/a", "/docs/b", "/docs/c"]


def test_without_prevent_outside_other_folders_are_followed_but_never_a_refused_host(allowed_web):
    site(allowed_web)
    pages_of([allowed_web.url("/docs/")], max_depth=2, prevent_outside=False)
    assert sorted(allowed_web.paths()) == ["/blog/", "/docs/", "/docs/a", "/docs/b"]


def test_a_crawl_stops_at_url_max_pages(allowed_web, settings):
    settings.URL_MAX_PAGES = 2
    site(allowed_web)
    assert len(pages_of([allowed_web.url("/docs/")], max_depth=3)) == 2
    assert len(allowed_web.requests) == 2


# --- Fields -----------------------------------------------------------------------------------------------

def test_headers_from_the_table_are_sent_and_those_the_fetch_sets_are_refused(allowed_web):
    allowed_web.pages["/page"] = Page(PAGE)
    pages_of([allowed_web.url("/page")], headers=[{"key": "X-Token", "value": "abc"}, {"key": "X-None", "value": None}])
    assert allowed_web.requests[0]["headers"]["X-Token"] == "abc"
    assert "X-None" not in allowed_web.requests[0]["headers"]
    with pytest.raises(ComponentError) as error:
        pages_of([allowed_web.url("/page")], headers=[{"key": "Host", "value": "internal"}])
    assert "'headers'" in str(error.value) and len(allowed_web.requests) == 1


@pytest.mark.parametrize("values, field", [
    ({"format": "PDF"}, "format"), ({"max_depth": 9}, "max_depth"), ({"urls": []}, "urls"),
    ({"headers": [{"key": "Bad Name", "value": "x"}]}, "headers"),
])
def test_bad_fields_are_refused_before_anything_is_fetched(allowed_web, values, field):
    fields = {"urls": [allowed_web.url("/page")], **values}
    with pytest.raises(ComponentError) as error:
        pages_of(**fields)
    assert f"'{field}'" in str(error.value) and allowed_web.requests == []


# --- As an agent's tool -------------------------------------------------------------------------------------

def test_as_a_tool_the_url_component_is_langflows_fetch_content_taking_urls(allowed_web):
    allowed_web.pages["/page"] = Page(PAGE)
    raw = next(item for item in load_fixture("simple_agent.json")["data"]["nodes"]
               if item["data"]["type"] == "URLComponent")
    graph = compile_graph({"nodes": [raw], "edges": []})
    component = graph.nodes[raw["id"]].component
    [spec] = tools.tool_specs(raw, component)
    assert spec.name == "fetch_content" and "urls" in spec.arguments
    tool = tools.Tool(spec=spec, node=graph.nodes[raw["id"]], params=graph.nodes[raw["id"]].params)
    context = RunContext(flow_id="flow-1", session_id="s", stream=False)
    result = asyncio.run(tool.call(json.dumps({"urls": [allowed_web.url("/page")]}), context))
    assert not result.failed
    [row] = json.loads(result.text)
    assert row["text"].startswith("Welcome") and row["title"] == "A page"
    refused = asyncio.run(tool.call(json.dumps({"urls": ["http://10.1.2.3/"]}), context))
    assert refused.failed and "not a public address" in refused.text
