"""A stand-in for arXiv's Atom API, served by the FakeWeb of tests/flows/web_stubs.py.

``arxiv_feed(papers)`` writes the Atom answer arXiv gives (its namespaces, links, categories);
the ``arxiv`` fixture serves it at ``/api/query``, points ``ARXIV_API_URL`` there and lists the
stub in ``URL_ALLOWED_PREFIXES``, as an operator would for a mirror on a private address.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

import pytest

from tests.flows.web_stubs import Page

PATH = "/api/query"

PAPERS = [
    {"id": "2401.00001v1", "title": "Attention Is\n  All You Translate", "summary": "We translate papers.\n  Twice.",
     "authors": ["Ada Lovelace", "Alan Turing"], "published": "2024-01-01T00:00:00Z", "category": "cs.CL",
     "comment": "10 pages", "journal_ref": ""},
    {"id": "2401.00002v2", "title": "Loops Considered Helpful", "summary": "Loops loop.",
     "authors": ["Grace Hopper"], "published": "2024-01-02T00:00:00Z", "category": "cs.PL", "comment": "",
     "journal_ref": "J. Loops 1 (2024)"},
]


def _entry(paper: dict) -> str:
    url = f"http://arxiv.org/abs/{paper['id']}"
    authors = "".join(f"<author><name>{escape(name)}</name></author>" for name in paper["authors"])
    extra = ""
    if paper.get("comment"):
        extra += f"<arxiv:comment>{escape(paper['comment'])}</arxiv:comment>"
    if paper.get("journal_ref"):
        extra += f"<arxiv:journal_ref>{escape(paper['journal_ref'])}</arxiv:journal_ref>"
    return (
        f"<entry><id>{url}</id><updated>{paper['published']}</updated><published>{paper['published']}</published>"
        f"<title>{escape(paper['title'])}</title><summary>{escape(paper['summary'])}</summary>{authors}{extra}"
        f"<link href={quoteattr(url)} rel=\"alternate\" type=\"text/html\"/>"
        f"<link title=\"pdf\" href={quoteattr(url.replace('/abs/', '/pdf/'))} rel=\"related\" type=\"application/pdf\"/>"
        f"<arxiv:primary_category term={quoteattr(paper['category'])} scheme=\"http://arxiv.org/schemas/atom\"/>"
        f"<category term={quoteattr(paper['category'])} scheme=\"http://arxiv.org/schemas/atom\"/>"
        f"<category term=\"cs.AI\" scheme=\"http://arxiv.org/schemas/atom\"/></entry>"
    )


def arxiv_feed(papers: list[dict]) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" '
        'xmlns:arxiv="http://arxiv.org/schemas/atom">'
        '<title type="html">ArXiv Query</title><id>http://arxiv.org/api/stub</id>'
        f"<opensearch:totalResults>{len(papers)}</opensearch:totalResults>"
        + "".join(_entry(paper) for paper in papers) + "</feed>"
    )


def serve_papers(web, papers: list[dict]) -> None:
    web.pages[PATH] = Page(body=arxiv_feed(papers), content_type="application/atom+xml; charset=utf-8")


@pytest.fixture
def arxiv(web, settings):
    """The FakeWeb serving PAPERS as arXiv's API, allowed by the operator."""
    settings.ARXIV_API_URL = web.url(PATH)
    settings.URL_ALLOWED_PREFIXES = [*settings.URL_ALLOWED_PREFIXES, web.origin]
    serve_papers(web, PAPERS)
    return web
