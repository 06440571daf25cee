"""What a fetched page says: its text (or Markdown), title, description, language and links.

HTML is parsed with lxml (libxml2's HTML parser), never with regular expressions; scripts,
styles and other parts that are not text are dropped. libxml2 builds the tree in time linear in
the page whatever its markup (a page of 400,000 nested ``<div>`` takes no longer than a flat
one: past 256 levels it stops nesting), and the walk over the tree keeps its own stack. Parsing
still costs time in proportion to the page, which the fetch caps (``URL_MAX_PAGE_BYTES``):
callers on the event loop run ``read_page`` on a thread.

RSS and Atom feeds are parsed with defusedxml: no entity expansion (billion laughs), no DTD and
no external entities.
"""

from __future__ import annotations

import codecs
import re
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit, urlunsplit

import lxml.etree
import lxml.html
from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# Kept as they are (after decoding) in the Text and Markdown formats.
PLAIN_TYPES = frozenset({"text/plain", "text/markdown", "text/csv", "application/json", "text/xml",
                         "application/xml", "application/rss+xml", "application/atom+xml"})
# Dropped with everything inside them: no reader sees them as text.
_DROPPED = ("script", "style", "noscript", "template", "svg", "math", "iframe", "object", "embed", "canvas",
            "head", "select", "button")
_BLOCKS = frozenset({
    "address", "article", "aside", "blockquote", "body", "dd", "details", "dialog", "div", "dl", "dt",
    "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
    "hgroup", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody",
    "tfoot", "thead", "tr", "ul", "caption", "html",
})
_HEADINGS = {f"h{level}": "#" * level + " " for level in range(1, 7)}
# A page's links worth following, at most: enough for any real page, few enough for a crawl queue.
MAX_LINKS = 1000
_SPACES = re.compile(r"\s+")
_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{1,40})""", re.IGNORECASE)
# lxml refuses text that still declares its bytes' encoding; the bytes were decoded already.
_XML_DECLARATION = re.compile(r"\A\s*<\?xml[^>]{0,200}\?>")


class PageTooSlow(Exception):
    """Reading the page took past its deadline."""


@dataclass
class PageContent:
    text: str
    title: str = ""
    description: str = ""
    language: str = ""
    links: list[str] = field(default_factory=list)


def decode(body: bytes, charset: str | None, *, detect: bool = True) -> str:
    """The body as text: the declared charset, else (``detect``) a BOM or the page's own
    ``<meta charset>``, else UTF-8; undecodable bytes become U+FFFD."""
    chosen = charset if charset and _known(charset) else None
    if chosen is None and detect:
        if body.startswith(codecs.BOM_UTF8):
            chosen = "utf-8-sig"
        elif body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            chosen = "utf-16"
        elif (found := _META_CHARSET.search(body[:4096])) and _known(found.group(1).decode("ascii")):
            chosen = found.group(1).decode("ascii")
    return body.decode(chosen or "utf-8", errors="replace")


def _known(charset: str) -> bool:
    try:
        codecs.lookup(charset)
    except LookupError:
        return False
    return True


def _parse(text: str):
    """The document's root element, or None for a page with no markup at all."""
    text = _XML_DECLARATION.sub("", text, count=1).replace("\x00", "")
    if not text.strip():
        return None
    try:
        return lxml.html.document_fromstring(text)
    except (lxml.etree.ParserError, ValueError):
        return None


def read_page(text: str, *, url: str, content_type: str, output: str = "Text", links: bool = False,
              deadline: float | None = None) -> PageContent:
    """What the page at ``url`` says, as ``output`` ("Text", "Markdown" or "HTML": the page as it
    came); ``links`` collects the absolute http(s) links it makes (fragments dropped). Past
    ``deadline`` (``time.monotonic()``), raise PageTooSlow."""
    if content_type not in HTML_TYPES:
        return PageContent(text=text)
    root = _parse(text)
    if root is None:
        return PageContent(text="" if output != "HTML" else text)
    title = root.find(".//title")
    description = next((meta.get("content") or "" for meta in root.iter("meta")
                        if (meta.get("name") or "").lower() == "description"), "")
    content = PageContent(
        text="",
        title=_clean(title.text_content()) if title is not None else "",
        description=_clean(description),
        language=(root.get("lang") or "").strip(),
    )
    base = root.find(".//base[@href]")
    base_url = urljoin(url, base.get("href") or "") if base is not None else url
    if links:
        content.links = _links(root, base_url, deadline)
    if output == "HTML":
        content.text = text
        return content
    content.text = _render(root, markdown=output == "Markdown", base_url=base_url, deadline=deadline)
    return content


def html_to_text(fragment: str) -> str:
    """The text of an HTML fragment (a feed item's summary)."""
    if "<" not in fragment and "&" not in fragment:
        return _clean(fragment)
    root = _parse(fragment)
    return _render(root, markdown=False, base_url="") if root is not None else ""


def _clean(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _links(root, base_url: str, deadline: float | None) -> list[str]:
    found: dict[str, None] = {}
    tried: set[str] = set()
    for seen, anchor in enumerate(root.iter("a"), start=1):
        if deadline is not None and not seen % 2048 and time.monotonic() > deadline:
            raise PageTooSlow()
        href = (anchor.get("href") or "").strip()
        if not href or href in tried or href.startswith(("#", "javascript:", "mailto:", "tel:", "data:")):
            continue
        tried.add(href)
        try:
            parts = urlsplit(urljoin(base_url, href))
        except ValueError:
            continue
        if parts.scheme not in ("http", "https"):
            continue
        found.setdefault(urlunsplit((parts.scheme, parts.netloc, parts.path or "/", parts.query, "")))
        if len(found) >= MAX_LINKS:
            break
    return list(found)


def _render(root, *, markdown: bool, base_url: str, deadline: float | None = None) -> str:
    """The text under ``root``: blocks on lines of their own, runs of spaces collapsed (kept
    inside ``<pre>``); in Markdown, headings, list items, emphasis and links marked up.

    Past ``deadline`` (``time.monotonic()``), raise PageTooSlow: a page built to be expensive
    stops costing when its fetch's time is up."""
    pieces: list[str] = []
    endings: list[str] = []
    pre = 0
    seen = 0

    def add(text: str | None) -> None:
        if text:
            pieces.append(text if pre else _SPACES.sub(" ", text))

    walker = lxml.etree.iterwalk(root, events=("start", "end", "comment", "pi"))
    for event, element in walker:
        tag = element.tag if isinstance(element.tag, str) else ""
        if not tag:  # a comment or a processing instruction: only the text after it counts
            add(element.tail)
            continue
        if tag in _DROPPED:
            if event == "start":
                walker.skip_subtree()
            else:
                add(element.tail)
            continue
        if event == "end":
            ending = endings.pop()
            if ending:
                pieces.append(ending)
            if tag == "pre":
                pre -= 1
            add(element.tail)
            continue
        seen += 1
        if deadline is not None and not seen % 2048 and time.monotonic() > deadline:
            raise PageTooSlow()
        opening = ending = ""
        if tag in _BLOCKS:
            opening = ending = "\n\n" if markdown else "\n"
        elif tag == "br":
            opening = "\n"
        elif tag in ("td", "th"):
            ending = " | " if markdown else "\t"
        if tag == "pre":
            pre += 1
            if markdown:
                opening, ending = "\n\n```\n", "\n```\n\n"
        if markdown:
            if tag in _HEADINGS:
                opening += _HEADINGS[tag]
            elif tag == "li":
                opening, ending = "\n- ", "\n"
            elif tag in ("strong", "b"):
                opening = ending = "**"
            elif tag in ("em", "i"):
                opening = ending = "_"
            elif tag == "code" and not pre:
                opening = ending = "`"
            elif tag == "a" and (href := (element.get("href") or "").strip()) and not href.startswith("javascript:"):
                opening, ending = "[", f"]({urljoin(base_url, href)})"
        if opening:
            pieces.append(opening)
        add(element.text)
        endings.append(ending)
    return _tidy("".join(pieces), markdown=markdown)


def _tidy(text: str, *, markdown: bool) -> str:
    """Trailing spaces off every line; at most one blank line (Markdown) or none (Text) in a row."""
    kept: list[str] = []
    blank = False
    for line in text.split("\n"):
        line = line.rstrip()
        if line.strip():
            if blank and markdown and kept:
                kept.append("")
            kept.append(line if line.startswith("    ") else line.lstrip(" "))
            blank = False
        else:
            blank = True
    return "\n".join(kept)


# --- Feeds ------------------------------------------------------------------------------------------

class FeedError(ValueError):
    """Not a feed that can be read; ``str()`` is safe to show."""


def read_feed(body: bytes, *, limit: int, deadline: float | None = None) -> list[dict]:
    """The first ``limit`` items of an RSS (0.9x, 1.0, 2.0) or Atom feed, as Langflow's rows:
    ``title``, ``link``, ``published``, ``summary`` (its HTML as text). Past ``deadline``
    (``time.monotonic()``), raise PageTooSlow."""
    try:
        root = ElementTree.fromstring(body, forbid_dtd=True)
    except DefusedXmlException:
        raise FeedError("declares a DTD or entities, which are refused") from None
    except ElementTree.ParseError:
        raise FeedError("is not well-formed XML") from None
    items = []
    for seen, element in enumerate(root.iter(), start=1):
        if deadline is not None and not seen % 1024 and time.monotonic() > deadline:
            raise PageTooSlow()
        if _local(element.tag) not in ("item", "entry"):
            continue
        fields = {_local(child.tag): child for child in element}
        link = fields.get("link")
        href = ""
        if link is not None:
            href = (link.get("href") or link.text or "").strip()
        published = next((fields[name].text or "" for name in ("pubDate", "published", "updated", "date")
                          if name in fields), "")
        summary = next((fields[name].text or "" for name in ("description", "summary", "content", "encoded")
                        if name in fields), "")
        title = fields.get("title")
        items.append({
            "title": _clean(html_to_text(title.text or "")) if title is not None else "",
            "link": href,
            "published": published.strip(),
            "summary": html_to_text(summary),
        })
        if len(items) >= limit:
            break
    if not items and _local(root.tag) not in ("rss", "feed", "RDF"):
        raise FeedError("is not an RSS or Atom feed")
    return items


def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""
