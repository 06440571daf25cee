"""URL: fetch web pages (and, with a depth above 1, the pages they link to) as text.

Langflow's URL component (``URLComponent``) from the fields its export stores: ``urls`` (a list,
or text with several), ``max_depth`` (1: only those pages; 2: and the pages they link to...),
``prevent_outside`` (follow links within the first URL's site and path only), ``format``
(Text, Markdown, or the HTML as it came), ``timeout`` (per page), ``headers`` (a table of
key/value rows), ``filter_text_html``, ``continue_on_failure``, ``check_response_status`` and
``autoset_encoding``. Outputs as Langflow's: ``page_results``, a table with one row per page
(``text``, ``url``, ``title``, ``description``, ``content_type``, ``language``), and
``raw_results``, a Message with the pages' texts.

Every fetch goes through ``flows.engine.http``: public addresses only unless the operator
allowed the URL, redirects checked the same way, ``URL_MAX_PAGE_BYTES`` per page,
``URL_MAX_PAGES`` pages per node, and ``URL_FETCH_TIMEOUT`` (or what is left of the run's time
budget) for all of it. A URL of the node that the rules refuse is a 422 naming the node; a link
found while crawling that they refuse is skipped.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time

from django.conf import settings

from .. import egress, http, pages
from ..errors import UpstreamError
from ..limits import text_size
from ..messages import Message
from .base import Component, register

logger = logging.getLogger("flows.engine.url")

FORMATS = ("Text", "HTML", "Markdown")
# Pages fetched side by side in one crawl.
CONCURRENCY = 4
MAX_HEADERS = 50
MAX_HEADER_BYTES = 8192
# Set by the fetch itself, or meaningless for a GET whose body the server frames.
_RESERVED_HEADERS = frozenset({
    "host", "content-length", "transfer-encoding", "connection", "accept-encoding", "te", "trailer",
    "upgrade", "keep-alive", "proxy-authorization", "proxy-connection", "expect",
})
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_SEPARATORS = re.compile(r"[\s,]+")
_TEXT_TYPES = pages.HTML_TYPES | pages.PLAIN_TYPES
_NOT_TEXT = frozenset({"text/css", "text/javascript", "application/javascript"})


class _PageFailed(Exception):
    """One page could not be read; ``str()`` is safe to show."""


@register("URLComponent")
class URL(Component):
    outputs = {
        "page_results": "fetch_content",
        "raw_results": "fetch_content_as_message",
        # Older exports (Langflow 1.1 to 1.4) name them so.
        "data": "fetch_content",
        "dataframe": "fetch_content",
        "text": "fetch_content_as_message",
    }
    # As an agent's tool, Langflow offers the pages (its Message output is not a tool).
    tool_outputs = {"fetch_content": "page_results"}

    # -- Parameters ---------------------------------------------------------------------------------

    def urls(self) -> list[http.Target]:
        """The node's URLs, checked (a scheme-less one is taken as https, as Langflow does)."""
        value = self.params.get("urls")
        raw = value if isinstance(value, list) else [value]
        entries: list[str] = []
        for item in raw:
            if item is None:
                continue
            if isinstance(item, (str, Message, dict)):
                text = item if isinstance(item, str) else self._item_text(item)
            else:
                raise self.fail("urls", "must be a list of URLs")
            entries.extend(part for part in _SEPARATORS.split(text) if part)
        if not entries:
            raise self.fail("urls", "is empty: give at least one URL")
        limit = settings.URL_MAX_PAGES
        targets: dict[str, http.Target] = {}
        for number, entry in enumerate(entries, start=1):
            url = entry if "://" in entry else f"https://{entry}"
            try:
                target = http.parse_url(url)
                http.refuse_private_literal(target)
            except egress.Refused as refusal:
                raise self.fail("urls", f"entry {number} ({_shown(entry)}) {refusal}") from None
            targets.setdefault(target.url, target)
            if len(targets) > limit:
                raise self.fail("urls", f"lists more than URL_MAX_PAGES ({limit}) URLs")
        return list(targets.values())

    def _item_text(self, item) -> str:
        if isinstance(item, Message):
            return item.text
        text = item.get("text") if isinstance(item.get("text"), str) else item.get("url")
        if not isinstance(text, str):
            raise self.fail("urls", "must be a list of URLs")
        return text

    def output_format(self) -> str:
        chosen = self.text("format", "Text") or "Text"
        if chosen not in FORMATS:
            raise self.fail("format", f"must be one of {', '.join(FORMATS)}")
        return chosen

    def headers(self) -> dict[str, str]:
        """The ``headers`` table (rows of ``key`` and ``value``, or one object) as request headers."""
        value = self.params.get("headers")
        if value in (None, "", []):
            return {}
        if isinstance(value, dict) and not {"key", "value"} <= value.keys():
            rows = [{"key": key, "value": item} for key, item in value.items()]
        else:
            rows = value if isinstance(value, list) else [value]
        if len(rows) > MAX_HEADERS:
            raise self.fail("headers", f"has more than {MAX_HEADERS} rows")
        headers: dict[str, str] = {}
        for row in rows:
            if not isinstance(row, dict):
                raise self.fail("headers", "must be rows with a 'key' and a 'value'")
            name, item = row.get("key"), row.get("value")
            if item is None:  # Langflow skips a header without a value
                continue
            if not isinstance(name, str) or not _HEADER_NAME.match(name):
                raise self.fail("headers", f"has an invalid header name {_shown(str(name))}")
            if name.lower() in _RESERVED_HEADERS:
                raise self.fail("headers", f"cannot set {name!r}: the fetch sets it itself")
            item = str(item)
            if not item.isprintable() or len(item.encode()) > MAX_HEADER_BYTES:
                raise self.fail("headers", f"has an invalid value for {name!r}")
            headers[name] = item
        return headers

    async def check(self) -> None:
        """Before the run: the node's own URLs must be URLs the rules may allow (a private IP
        address is refused at once; a host name is checked when its connection opens) and its
        other fields must be readable, so that a streamed run answers 422 rather than failing."""
        if self.params.get("urls") not in (None, "", [], [""]):
            self.urls()
        self.output_format()
        self.headers()
        self.number("max_depth", 1, minimum=1, maximum=5, integer=True)

    # -- Outputs --------------------------------------------------------------------------------------

    async def fetch_content(self) -> list[dict]:
        """One row per page, as Langflow's DataFrame."""
        return await self._pages()

    async def fetch_content_as_message(self) -> Message:
        rows = await self._pages()
        return self.message("\n\n".join(row["text"] for row in rows), sender="Machine", sender_name="AI")

    async def _pages(self) -> list[dict]:
        rows = getattr(self, "_rows", None)
        if rows is None:  # both outputs wanted: fetched once
            rows = self._rows = await self._crawl()
        return rows

    async def _crawl(self) -> list[dict]:
        roots = self.urls()
        depth = int(self.number("max_depth", 1, minimum=1, maximum=5, integer=True) or 1)
        output = self.output_format()
        headers = self.headers()
        prevent_outside = self.boolean("prevent_outside", True)
        continue_on_failure = self.boolean("continue_on_failure", True)
        budget = self.context.budget
        if budget.expired():
            raise budget.out_of_time(self.node.id)
        total = min(settings.URL_FETCH_TIMEOUT, budget.remaining())
        per_page = self.number("timeout", None, minimum=0, maximum=10**6) or total
        limit = settings.URL_MAX_PAGES
        room = self.value_room()

        rows: list[dict] = []
        size = 0
        seen = {target.url for target in roots}
        level = [(target, target) for target in roots]
        failures: list[str] = []
        gate = asyncio.Semaphore(CONCURRENCY)
        async with http.Fetcher(timeout=total, max_bytes=settings.URL_MAX_PAGE_BYTES) as fetcher:
            for step in range(1, depth + 1):
                follow = step < depth
                outcomes = await asyncio.gather(*(
                    self._page(fetcher, gate, target, headers=headers, output=output, follow=follow,
                               timeout=per_page)
                    for target, _root in level))
                following = []
                for (target, root), outcome in zip(level, outcomes, strict=True):
                    if isinstance(outcome, egress.Refused):
                        if step == 1:
                            raise self.fail("urls", f"{_shown(target.url)} {outcome}")
                        continue  # a link the rules refuse: not followed
                    if isinstance(outcome, _PageFailed):
                        failures.append(f"{_shown(target.url)}: {outcome}")
                        if step == 1 and not continue_on_failure:
                            raise self._failed(failures[-1])
                        continue
                    if outcome is None:
                        continue  # not text
                    row, links = outcome
                    size += text_size(row["text"]) + 1
                    if size > room:
                        raise self.too_large()
                    rows.append(row)
                    for link in links:
                        if len(seen) >= limit:
                            break
                        try:
                            found = http.parse_url(link)
                        except egress.Refused:
                            continue
                        if found.url in seen or (prevent_outside and not _inside(found, root)):
                            continue
                        seen.add(found.url)
                        following.append((found, root))
                level = following
                if not level or fetcher.remaining() <= 0:
                    break
        if budget.expired():
            raise budget.out_of_time(self.node.id)
        if not rows:
            raise self._failed(failures[0] if failures else "no page had any text")
        return rows

    async def _page(self, fetcher: http.Fetcher, gate: asyncio.Semaphore, target: http.Target, *,
                    headers: dict[str, str], output: str, follow: bool, timeout: float):
        """``(row, links)`` for one page, None when it is no text; the error when it failed."""
        async with gate:
            try:
                response = await fetcher.get(target, headers=headers, timeout=timeout)
            except egress.Refused as refusal:
                return refusal
            except http.FetchFailed as error:
                return _PageFailed(str(error))
        if response.status >= 400 and self.boolean("check_response_status", False):
            return _PageFailed(f"HTTP {response.status}")
        kind = response.content_type
        if kind in _NOT_TEXT and self.boolean("filter_text_html", True):
            return None
        if kind not in _TEXT_TYPES and not kind.startswith("text/"):
            return None
        text = pages.decode(response.body, response.charset, detect=self.boolean("autoset_encoding", True))
        deadline = time.monotonic() + max(0.0, fetcher.remaining())
        try:
            # Parsing is CPU work in proportion to the page: off the event loop.
            content = await asyncio.to_thread(pages.read_page, text, url=response.url, content_type=kind,
                                              output=output, links=follow, deadline=deadline)
        except pages.PageTooSlow:
            return _PageFailed("reading the page took past the deadline")
        row = {
            "text": content.text,
            "url": response.url,
            "title": content.title,
            "description": content.description,
            "content_type": response.header,
            "language": content.language,
        }
        return row, content.links

    def _failed(self, reason: str) -> UpstreamError:
        return UpstreamError(f"Fetching pages failed in node {self.node.id}: {reason}", node_ids=(self.node.id,))


def _inside(found: http.Target, root: http.Target) -> bool:
    """Within the first URL's site and its folder (Langflow's ``prevent_outside``)."""
    if (found.base.scheme, found.base.host, found.base.port) != (root.base.scheme, root.base.host, root.base.port):
        return False
    folder = root.path[:root.path.rfind("/") + 1]
    return found.path.startswith(folder)


def _shown(text: str) -> str:
    """A URL as an error message shows it: quoted, at most 200 characters."""
    return repr(text if len(text) <= 200 else text[:200] + "...")
