"""Web Search: search the web or the news through the operator's search backend, or read a feed.

Langflow's "Web Search" (``UnifiedWebSearch``) from the fields its export stores:
``search_mode`` (Web, News or RSS), ``query`` (the keywords, or in RSS mode the feed's URL),
``max_results``, ``max_content_length``, ``hl`` (the language) and ``timeout``. Langflow scrapes
DuckDuckGo and Google News; this server asks the search backend its operator configured:
``WEB_SEARCH_URL``, a SearXNG-compatible endpoint answering ``?q=...&format=json`` with
``{"results": [{"title", "url", "content", "publishedDate"}...]}`` (News mode asks for
``categories=news``). Without one, a flow whose Web Search node may search is refused before it
runs, with 422 naming the node. RSS mode needs no backend: it fetches the feed like the URL
component fetches a page (``flows.engine.http``: public addresses only unless allowed).

The rows are Langflow's: Web ``title``, ``link``, ``snippet``, ``content`` (the result page's
text, read as Langflow does, else the snippet); News and RSS ``title``, ``link``,
``published``, ``summary``. Each row also has ``text`` (its fields, one a line), which is what
a row reads as where text is wanted.

Bounds: ``WEB_SEARCH_MAX_RESULTS`` rows at most, ``WEB_SEARCH_MAX_RESPONSE_BYTES`` of answer
(search or feed), ``URL_MAX_PAGE_BYTES`` per result page, and one deadline, the smallest of the
node's ``timeout``, ``WEB_SEARCH_TIMEOUT`` and what is left of the run's budget; result pages
not read by then keep their snippet.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time

from django.conf import settings
from yarl import URL as Yarl

from .. import egress, http, pages
from ..errors import ComponentError, UpstreamError
from ..limits import text_size
from .base import Component, register

logger = logging.getLogger("flows.engine.web_search")

MODES = ("Web", "News", "RSS")
# Result pages read side by side in Web mode.
CONCURRENCY = 4
_QUERY_UNSAFE = re.compile(r"[<>\"']")
MAX_QUERY_CHARS = 2000


class _BadAnswer(Exception):
    """The search backend's answer cannot be read."""


@register("UnifiedWebSearch")
class WebSearch(Component):
    outputs = {"results": "perform_search"}
    tool_outputs = {"perform_search": "results"}

    def mode(self) -> str:
        chosen = (self.text("search_mode", "Web") or "Web").strip()
        for mode in MODES:
            if chosen.lower() == mode.lower():
                return mode
        raise self.fail("search_mode", f"must be one of {', '.join(MODES)}")

    async def check(self) -> None:
        """Before the run: a node that may search (Web or News mode; as an agent's tool, any
        mode) needs the operator's search backend."""
        if self.mode() != "RSS" and not settings.WEB_SEARCH_URL:
            raise ComponentError(
                f"Node {self.node.id}: web search is not configured on this server (an administrator "
                "sets WEB_SEARCH_URL to a SearXNG-compatible search endpoint).", node_ids=(self.node.id,))

    # -- The output -------------------------------------------------------------------------------

    async def perform_search(self) -> list[dict]:
        mode = self.mode()
        await self.check()
        query = self.text("query").strip()
        if not query:
            raise self.fail("query", "is empty: give the keywords to search for" if mode != "RSS"
                            else "is empty: give the URL of the RSS feed")
        if len(query) > MAX_QUERY_CHARS:
            raise self.fail("query", f"is longer than {MAX_QUERY_CHARS} characters")
        wanted = int(self.number("max_results", 5, minimum=1, maximum=10**6, integer=True) or 5)
        count = min(wanted, settings.WEB_SEARCH_MAX_RESULTS)
        length = int(self.number("max_content_length", 2000, minimum=1, maximum=10**8, integer=True) or 2000)
        budget = self.context.budget
        if budget.expired():
            raise budget.out_of_time(self.node.id)
        limit = settings.WEB_SEARCH_TIMEOUT
        timeout = min(self.number("timeout", limit, minimum=0, maximum=10**6) or limit, limit, budget.remaining())
        try:
            async with http.Fetcher(timeout=timeout, max_bytes=settings.WEB_SEARCH_MAX_RESPONSE_BYTES) as fetcher:
                if mode == "RSS":
                    rows = await self._feed(fetcher, query, count, length)
                else:
                    rows = await self._search(fetcher, mode, query, count, length)
        except http.FetchFailed as error:
            if budget.expired():
                raise budget.out_of_time(self.node.id) from None
            raise self._failed(str(error)) from None
        size = sum(text_size(row["text"]) + 1 for row in rows)
        if size > self.value_room():
            raise self.too_large()
        return rows

    def _failed(self, reason: str) -> UpstreamError:
        return UpstreamError(f"Web search failed in node {self.node.id}: {reason}", node_ids=(self.node.id,))

    # -- Web and News: the operator's backend --------------------------------------------------------

    async def _search(self, fetcher: http.Fetcher, mode: str, query: str, count: int, length: int) -> list[dict]:
        params = {"q": _QUERY_UNSAFE.sub("", query), "format": "json",
                  "categories": "news" if mode == "News" else "general"}
        language = self.text("hl").strip()
        if language:
            params["language"] = language[:20]
        endpoint = Yarl(settings.WEB_SEARCH_URL)
        url = str(endpoint.update_query(params))
        response = await fetcher.get(url, trusted=True, headers={"Accept": "application/json"})
        if response.status != 200:
            logger.warning("The search backend answered HTTP %s", response.status)
            raise self._failed(f"the search backend answered HTTP {response.status}")
        try:
            results = _results(response.body, count)
        except _BadAnswer as error:
            logger.warning("Unreadable answer from the search backend: %s", error)
            raise self._failed("the search backend's answer could not be read") from None
        if mode == "News":
            return [_row(title=item["title"], link=item["url"], published=item["published"],
                         summary=item["content"][:length]) for item in results]
        pages_text = await self._result_pages(fetcher, [item["url"] for item in results])
        return [_row(title=item["title"], link=item["url"], snippet=item["content"][:length],
                     content=(pages_text.get(item["url"]) or item["content"])[:length]) for item in results]

    async def _result_pages(self, fetcher: http.Fetcher, urls: list[str]) -> dict[str, str]:
        """The text of each result page read before the deadline (Langflow's ``content``).
        A page that fails, is refused or is not HTML is left out: its row keeps the snippet."""
        gate = asyncio.Semaphore(CONCURRENCY)

        async def read(url: str) -> str:
            async with gate:
                try:
                    response = await fetcher.get(url, max_bytes=settings.URL_MAX_PAGE_BYTES)
                except (egress.Refused, http.FetchFailed):
                    return ""
            if response.status >= 400 or response.content_type not in pages.HTML_TYPES:
                return ""
            text = pages.decode(response.body, response.charset)
            deadline = time.monotonic() + max(0.0, fetcher.remaining())
            try:
                content = await asyncio.to_thread(pages.read_page, text, url=response.url,
                                                  content_type=response.content_type, deadline=deadline)
            except pages.PageTooSlow:
                return ""
            return content.text

        found = await asyncio.gather(*(read(url) for url in urls))
        return dict(zip(urls, found, strict=True))

    # -- RSS ----------------------------------------------------------------------------------------

    async def _feed(self, fetcher: http.Fetcher, query: str, count: int, length: int) -> list[dict]:
        url = query if "://" in query else f"https://{query}"
        try:
            response = await fetcher.get(url, headers={"Accept": "application/rss+xml, application/atom+xml, "
                                                                 "application/xml;q=0.9, */*;q=0.1"})
        except egress.Refused as refusal:
            raise self.fail("query", f"{refusal}") from None
        if response.status >= 400:
            raise self._failed(f"the feed answered HTTP {response.status}")
        deadline = time.monotonic() + max(0.0, fetcher.remaining())
        try:
            items = await asyncio.to_thread(pages.read_feed, response.body, limit=count, deadline=deadline)
        except pages.FeedError as error:
            raise self._failed(f"the feed {error}") from None
        except pages.PageTooSlow:
            raise self._failed("reading the feed took past the deadline") from None
        return [_row(title=item["title"], link=item["link"], published=item["published"],
                     summary=item["summary"][:length]) for item in items]


def _results(body: bytes, count: int) -> list[dict]:
    """The first ``count`` of SearXNG's ``results`` that have an http(s) URL, each with a
    title, a snippet and a date (as text: a backend may send HTML)."""
    try:
        answer = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise _BadAnswer("not JSON") from error
    results = answer.get("results") if isinstance(answer, dict) else None
    if not isinstance(results, list):
        raise _BadAnswer("no 'results' list")
    found = []
    for item in results:
        if not isinstance(item, dict):
            continue
        url = item.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            continue
        found.append({
            "title": _string(item.get("title")),
            "url": url,
            "content": _string(item.get("content")),
            "published": _string(item.get("publishedDate") or item.get("pubdate")),
        })
        if len(found) >= count:
            break
    return found


def _string(value) -> str:
    return pages.html_to_text(value) if isinstance(value, str) else ""


def _row(**fields: str) -> dict:
    """A Langflow row, plus ``text``: its non-empty fields, one a line (in Web mode the page's
    content, else the snippet, not both)."""
    shown = [value for name, value in fields.items() if value and not (name == "snippet" and fields.get("content"))]
    fields["text"] = "\n".join(shown)
    return fields
