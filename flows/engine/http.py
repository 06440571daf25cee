"""Fetch a URL for a component: awaited, within the egress rules, a size cap and one deadline.

Components that read the web (URL, Web Search and its RSS mode) share this. What a flow may
reach is decided as for model base URLs (``egress``): a URL a flow chose (a node's field, a
tweak, a link found on a page, a search result, a redirect) must be a plain http(s) URL whose
host resolves to public addresses only, unless it lies within one of the operator's
``URL_ALLOWED_PREFIXES``. The check is made where the connection opens and the connection goes
to the very address checked (``egress.PublicOnlyConnector``), so DNS rebinding gains nothing;
the environment's proxies are ignored for those connections. A URL the operator configured
(``WEB_SEARCH_URL``) is ``trusted``: called as it is, like ``OPENAI_BASE_URL``, and never
redirected.

Bounds, whatever the server does: one deadline for everything a ``Fetcher`` does (connecting,
redirects, headers and every read), ``max_bytes`` for each body after decompression (gzip
and deflate are decompressed here, in steps that never produce more than the room left, so a
small compressed bomb fails like a large body), at most ``MAX_REDIRECTS`` redirects, each one
checked like the first URL. ``FetchFailed``'s text is safe to show; details go to the log.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import zlib
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import aiohttp
from django.conf import settings
from multidict import CIMultiDict

from . import egress

logger = logging.getLogger("flows.engine.http")

ALLOW_SETTING = "URL_ALLOWED_PREFIXES"
MAX_REDIRECTS = 5
# Connections one Fetcher keeps open at once (a crawl fetches a few pages side by side).
MAX_CONNECTIONS = 8
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class FetchFailed(Exception):
    """The fetch failed; ``str()`` is a short reason fit for the client (it completes "... failed: ")."""


class TooLarge(FetchFailed):
    """The body is larger than the fetch's ``max_bytes``."""


@dataclass(frozen=True)
class Target:
    """A URL a flow chose, taken apart and checked: ``egress`` rules apply to ``base``."""

    base: egress.BaseUrl
    path: str
    query: str

    @property
    def url(self) -> str:
        """The URL rebuilt from the checked parts (the fragment dropped)."""
        origin = self.base.url[:len(self.base.url) - len(self.base.path)] if self.base.path else self.base.url
        return origin + self.path + (f"?{self.query}" if self.query else "")

    @property
    def is_allowed(self) -> bool:
        """Did the operator list it in URL_ALLOWED_PREFIXES (reachable whatever it resolves to)?"""
        return any(self.base.is_within(allowed) for allowed in allowed_prefixes())


def parse_url(url: str) -> Target:
    """Return ``url`` taken apart; raise egress.Refused unless it is a plain http(s) URL."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        raise egress.Refused("is not a valid URL") from None
    if not url.isprintable() or " " in url:
        raise egress.Refused("is not a valid URL")
    base = egress.parse_base_url(urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")))
    return Target(base=base, path=parts.path or "/", query=parts.query)


def allowed_prefixes() -> tuple[egress.BaseUrl, ...]:
    """``settings.URL_ALLOWED_PREFIXES``, parsed (ImproperlyConfigured names a bad entry)."""
    return egress.parse_allowed_base_urls(tuple(settings.URL_ALLOWED_PREFIXES), ALLOW_SETTING)


def refuse_private_literal(target: Target) -> None:
    """Refuse an IP address that is not public at once, without a lookup (a run's check)."""
    try:
        address = ipaddress.ip_address(target.base.host)
    except ValueError:
        return
    if not target.is_allowed and not egress.is_public(address):
        raise egress.Refused(f"is refused: {target.base.host!r} is not a public address; "
                             f"an administrator can allow it with {ALLOW_SETTING}")


class PageConnector(egress.PublicOnlyConnector):
    """Public addresses only, the refusal naming URL_ALLOWED_PREFIXES."""

    allow_setting = ALLOW_SETTING
    subject = "the URL's host"


@dataclass(frozen=True)
class Response:
    url: str  # where the body came from, after redirects
    status: int
    content_type: str  # the media type, lower case ("text/html")
    charset: str | None
    body: bytes
    header: str  # the Content-Type header as sent


class Fetcher:
    """Every fetch of one component call: its deadline, its connections, its caps.

    ``async with Fetcher(timeout=..., max_bytes=...) as fetcher: await fetcher.get(url)``.
    ``timeout`` (seconds) is the deadline of all the fetcher's calls together; ``get`` may set
    a shorter one for a single call.
    """

    def __init__(self, *, timeout: float, max_bytes: int):
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.at = asyncio.get_running_loop().time() + timeout
        self._sessions: dict[bool, aiohttp.ClientSession] = {}

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()

    def remaining(self) -> float:
        return self.at - asyncio.get_running_loop().time()

    def _session(self, public_only: bool) -> aiohttp.ClientSession:
        if public_only not in self._sessions:
            connector: aiohttp.TCPConnector
            if public_only:
                # Every new connection resolves and checks again: no DNS cache to rebind through.
                # The environment's proxies are ignored: a proxy would resolve the host, unchecked.
                connector = PageConnector(limit=MAX_CONNECTIONS, use_dns_cache=False)
                session = aiohttp.ClientSession(connector=connector, trust_env=False, auto_decompress=False)
            else:
                connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS)
                session = aiohttp.ClientSession(connector=connector, trust_env=True, auto_decompress=False)
            self._sessions[public_only] = session
        return self._sessions[public_only]

    async def get(self, url: str | Target, *, headers: dict[str, str] | None = None, trusted: bool = False,
                  follow_redirects: bool = True, timeout: float | None = None,
                  max_bytes: int | None = None) -> Response:
        """GET ``url`` and read its body (any status; 3xx are followed or fail).

        Raise egress.Refused for a URL (or a redirect) the rules refuse, FetchFailed otherwise.
        ``trusted``: the operator's own URL, called as it is and never redirected.
        """
        loop = asyncio.get_running_loop()
        at = self.at if timeout is None else min(self.at, loop.time() + timeout)
        seconds = max(0.0, at - loop.time())
        try:
            async with asyncio.timeout_at(at):
                return await self._get(url, headers=headers or {}, trusted=trusted,
                                       follow_redirects=follow_redirects and not trusted,
                                       max_bytes=self.max_bytes if max_bytes is None else max_bytes)
        except TimeoutError:
            raise FetchFailed(f"no answer within {seconds:.3g} s") from None

    async def _get(self, url: str | Target, *, headers: dict[str, str], trusted: bool, follow_redirects: bool,
                   max_bytes: int) -> Response:
        sent = CIMultiDict(headers)
        sent["Accept-Encoding"] = "gzip, deflate"
        if trusted:
            current, public_only = str(url), False
        else:
            target = url if isinstance(url, Target) else parse_url(url)
            current, public_only = target.url, not target.is_allowed
        for _hop in range(MAX_REDIRECTS + 1):
            try:
                response = await self._session(public_only).get(current, headers=sent, allow_redirects=False)
            except aiohttp.ClientError as error:
                logger.info("Fetching %s failed: %s", current, error)
                raise FetchFailed("could not connect") from None
            try:
                if response.status in _REDIRECTS and "Location" in response.headers:
                    if not follow_redirects:
                        raise FetchFailed(f"the server answered with a redirect (HTTP {response.status})")
                    location = urljoin(current, response.headers["Location"])
                    try:
                        target = parse_url(location)
                    except egress.Refused as refusal:
                        raise egress.Refused(f"redirects to a URL that {refusal}") from None
                    current, public_only = target.url, not target.is_allowed
                    continue
                body = await _read(response, max_bytes)
                return Response(url=current, status=response.status, content_type=response.content_type.lower(),
                                charset=response.charset, body=body,
                                header=response.headers.get("Content-Type", ""))
            except aiohttp.ClientError as error:
                logger.info("Reading %s failed: %s", current, error)
                raise FetchFailed("the answer broke off") from None
            finally:
                if response.content.at_eof():
                    response.release()
                else:
                    response.close()
        raise FetchFailed(f"more than {MAX_REDIRECTS} redirects")


async def _read(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    """The body, decompressed, at most ``max_bytes``; raise TooLarge past it."""
    declared = response.content_length
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("", "identity"):
        decompressor = None
        if declared is not None and declared > max_bytes:
            raise TooLarge(f"the answer is larger than {max_bytes:,} bytes")
    elif encoding in ("gzip", "x-gzip", "deflate"):
        # wbits 47 (32 + 15): a zlib or a gzip header, whichever the server sent.
        decompressor = zlib.decompressobj(47)
    else:
        raise FetchFailed(f"the answer's Content-Encoding {encoding[:40]!r} is not supported")
    body = bytearray()
    async for chunk in response.content.iter_any():
        if decompressor is not None:
            room = max_bytes - len(body)
            try:
                # At most room + 1 bytes come out: one more than fits is enough to know.
                chunk = decompressor.decompress(chunk, room + 1)
            except zlib.error:
                raise FetchFailed("the answer could not be decompressed") from None
        body += chunk
        if len(body) > max_bytes:
            raise TooLarge(f"the answer is larger than {max_bytes:,} bytes")
    return bytes(body)
