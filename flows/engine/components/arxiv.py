"""arXiv: search arXiv's papers through its Atom API.

Langflow's "arXiv" (``ArXivComponent``) from the fields its export stores: ``search_query``,
``search_type`` (``all``, ``title``, ``abstract``, ``author`` or ``cat``, sent with arXiv's
``ti:``, ``abs:``, ``au:`` and ``cat:`` prefixes as Langflow does) and ``max_results``. Its one
output, ``dataframe``, is Langflow's table of papers: ``id``, ``title``, ``summary``,
``published``, ``updated``, ``authors`` (a list of names), ``arxiv_url``, ``pdf_url``,
``comment``, ``journal_ref``, ``primary_category`` and ``categories``, plus ``text`` (the title,
authors, date, link and summary, one a line), which is what a row reads as where text is wanted.
As an Agent's tool it is ``search_papers_dataframe``, its argument the ``search_query``.

The API is ``ARXIV_API_URL`` (arXiv's own by default; a mirror or a stub may replace it). It is
fetched through ``flows.engine.http`` like any page a flow reads: public addresses only unless
the operator lists the URL in ``URL_ALLOWED_PREFIXES``, redirects checked the same way, at most
``ARXIV_MAX_RESPONSE_BYTES`` of answer, one deadline (the smaller of ``ARXIV_TIMEOUT`` and the
run's time left), ``max_results`` lowered to ``ARXIV_MAX_RESULTS``. The Atom answer is read with
defusedxml (no DTD, no entities) on a worker thread within the same deadline. Where Langflow
returns a row holding the error, a failed search here is a 502 naming the node (told to the
model when the node is a tool).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException
from django.conf import settings
from yarl import URL as Yarl

from .. import egress, http
from ..errors import ComponentError, UpstreamError
from ..limits import text_size
from .base import Component, register

logger = logging.getLogger("flows.engine.arxiv")

ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"
# Langflow's Search Field choices and the arXiv API prefix each stands for ("all": none).
PREFIXES = {"all": "", "title": "ti", "abstract": "abs", "author": "au", "cat": "cat"}
MAX_QUERY_CHARS = 1000
# How often (in XML elements) reading the answer looks at the clock.
_CLOCK_EVERY = 512
_SPACES = re.compile(r"\s+")


class _Unreadable(Exception):
    """The API's answer is not an Atom feed; ``str()`` is safe to show."""


class _TooSlow(Exception):
    """Reading the answer went past the deadline."""


@register("ArXivComponent")
class ArXiv(Component):
    outputs = {"dataframe": "search_papers_dataframe"}
    tool_outputs = {"search_papers_dataframe": "dataframe"}

    # -- Parameters --------------------------------------------------------------------------------

    def search_type(self) -> str:
        chosen = (self.text("search_type", "all") or "all").strip().lower()
        if chosen not in PREFIXES:
            raise self.fail("search_type", f"must be one of {', '.join(PREFIXES)}")
        return chosen

    def max_results(self) -> int:
        wanted = int(self.number("max_results", 10, minimum=1, maximum=10**6, integer=True) or 10)
        return min(wanted, settings.ARXIV_MAX_RESULTS)

    def api(self) -> http.Target:
        """``ARXIV_API_URL``, checked like any URL a flow reads (a bad setting names itself)."""
        try:
            target = http.parse_url(settings.ARXIV_API_URL)
            http.refuse_private_literal(target)
        except egress.Refused as refusal:
            raise ComponentError(f"Node {self.node.id}: the arXiv API (ARXIV_API_URL) {refusal}",
                                 node_ids=(self.node.id,)) from None
        return target

    async def check(self) -> None:
        """Before the run: the fields no edge replaces, and the server's API URL."""
        self.search_type()
        self.max_results()
        self.api()

    # -- The output --------------------------------------------------------------------------------

    async def search_papers_dataframe(self) -> list[dict]:
        query = _SPACES.sub(" ", self.text("search_query")).strip()
        if not query:
            raise self.fail("search_query", "is empty: give the words to search arXiv for")
        if len(query) > MAX_QUERY_CHARS:
            raise self.fail("search_query", f"is longer than {MAX_QUERY_CHARS} characters")
        prefix = PREFIXES[self.search_type()]
        count = self.max_results()
        api = self.api()
        budget = self.context.budget
        if budget.expired():
            raise budget.out_of_time(self.node.id)
        timeout = min(settings.ARXIV_TIMEOUT, budget.remaining())
        url = str(Yarl(api.url).update_query({"search_query": f"{prefix}:{query}" if prefix else query,
                                               "start": "0", "max_results": str(count)}))
        try:
            async with http.Fetcher(timeout=timeout, max_bytes=settings.ARXIV_MAX_RESPONSE_BYTES) as fetcher:
                response = await fetcher.get(url, headers={"Accept": "application/atom+xml, application/xml;q=0.9"})
                deadline = time.monotonic() + max(0.0, fetcher.remaining())
        except egress.Refused as refusal:
            raise ComponentError(f"Node {self.node.id}: the arXiv API (ARXIV_API_URL) {refusal}",
                                 node_ids=(self.node.id,)) from None
        except http.FetchFailed as error:
            if budget.expired():
                raise budget.out_of_time(self.node.id) from None
            raise self._failed(str(error)) from None
        if response.status != 200:
            logger.warning("The arXiv API answered HTTP %s", response.status)
            raise self._failed(f"the arXiv API answered HTTP {response.status}")
        try:
            papers = await asyncio.to_thread(read_papers, response.body, limit=count, deadline=deadline)
        except _Unreadable as error:
            raise self._failed(f"the arXiv API's answer {error}") from None
        except _TooSlow:
            raise self._failed("reading the arXiv API's answer took past the deadline") from None
        size = sum(text_size(paper["text"]) + text_size(paper["summary"] or "") + 1 for paper in papers)
        if size > self.value_room():
            raise self.too_large()
        return papers

    def _failed(self, reason: str) -> UpstreamError:
        return UpstreamError(f"arXiv search failed in node {self.node.id}: {reason}", node_ids=(self.node.id,))


def read_papers(body: bytes, *, limit: int, deadline: float | None = None) -> list[dict]:
    """The first ``limit`` entries of an arXiv Atom answer, as Langflow's rows.

    An answer the API marks as an error (an entry whose id is under ``/api/errors``) raises
    _Unreadable with its message; so does anything that is not an Atom feed."""
    try:
        root = ElementTree.fromstring(body, forbid_dtd=True)
    except DefusedXmlException:
        raise _Unreadable("declares a DTD or entities, which are refused") from None
    except ElementTree.ParseError:
        raise _Unreadable("is not well-formed XML") from None
    if root.tag != f"{ATOM}feed":
        raise _Unreadable("is not an Atom feed")
    papers: list[dict] = []
    for seen, entry in enumerate(root, start=1):
        if deadline is not None and not seen % _CLOCK_EVERY and time.monotonic() > deadline:
            raise _TooSlow()
        if entry.tag != f"{ATOM}entry":
            continue
        paper = _paper(entry)
        if "/api/errors" in (paper["id"] or ""):
            raise _Unreadable(f"is an error: {(paper['summary'] or paper['title'] or '')[:200]}")
        papers.append(paper)
        if len(papers) >= limit:
            break
    return papers


def _paper(entry) -> dict[str, Any]:
    links = entry.findall(f"{ATOM}link")
    primary = entry.find(f"{ARXIV}primary_category")
    authors = [_one_line(name.text) or "" for author in entry.findall(f"{ATOM}author")
               if (name := author.find(f"{ATOM}name")) is not None and name.text]
    paper: dict[str, Any] = {
        "id": _text(entry, f"{ATOM}id"),
        "title": _one_line(_text(entry, f"{ATOM}title")),
        "summary": _text(entry, f"{ATOM}summary"),
        "published": _text(entry, f"{ATOM}published"),
        "updated": _text(entry, f"{ATOM}updated"),
        "authors": authors,
        "arxiv_url": _link(links, rel="alternate"),
        "pdf_url": _link(links, title="pdf") or _link(links, rel="related"),
        "comment": _text(entry, f"{ARXIV}comment"),
        "journal_ref": _text(entry, f"{ARXIV}journal_ref"),
        "primary_category": primary.get("term") if primary is not None else None,
        "categories": [term for category in entry.findall(f"{ATOM}category") if (term := category.get("term"))],
    }
    shown = [paper["title"], ", ".join(authors), paper["published"], paper["arxiv_url"], paper["summary"]]
    paper["text"] = "\n".join(part for part in shown if part)
    return paper


def _text(element, path: str) -> str | None:
    """As Langflow: the element's text, stripped, or None."""
    found = element.find(path)
    return found.text.strip() if found is not None and found.text else None


def _one_line(text: str | None) -> str | None:
    return _SPACES.sub(" ", text).strip() if text else text


def _link(links, *, rel: str | None = None, title: str | None = None) -> str | None:
    for link in links:
        if (rel is None or link.get("rel") == rel) and (title is None or link.get("title") == title):
            return link.get("href")
    return None
