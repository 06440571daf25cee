"""Where a flow may make this server connect: the model base URLs that flows and tweaks choose,
and the pages they fetch (``flows.engine.http``, with its own allow list, URL_ALLOWED_PREFIXES).

A flow's model node (or a run's tweak) names the model server's base URL. Left open, that
lets anybody who may run a flow make the server call its own loopback services, the cloud
metadata address (169.254.169.254) or the private network: server-side request forgery. So a
base URL a flow chooses must be a plain http(s) URL without credentials whose host resolves
to public addresses only, unless the operator listed it in ``MODEL_ALLOWED_BASE_URLS`` (a
local Ollama, a model server on the private network). ``settings.OPENAI_BASE_URL`` is the
operator's own choice and never comes here.

``require_public`` checks before a run starts. ``PublicOnlyConnector`` checks again where it
counts: each connection resolves the host once, checks every address and connects to one of
those very addresses (TLS still verifies, and SNI and ``Host`` still name, the host the flow
gave), so a DNS answer that changes between the check and the connection (DNS rebinding)
gains nothing.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import re
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

import aiohttp
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from aiohttp.abc import ResolveResult

logger = logging.getLogger("flows.engine.egress")

DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\Z")
# IPv6 addresses that carry an IPv4 address where the packets really go (besides IPv4-mapped
# and 6to4, which ipaddress unpacks itself): NAT64's well-known prefix.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Deprecated IPv4-compatible addresses (::a.b.c.d), and :: and ::1 with them.
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(Exception):
    """A base URL a flow may not use. ``str()`` completes "'base_url' ..." and is safe to show:
    it names the host the flow gave, never the addresses that host resolves to."""


class HostNotFound(Exception):
    """The base URL's host does not resolve."""


@dataclass(frozen=True)
class BaseUrl:
    """A base URL taken apart: what the allow list matches and what the call is sent to."""

    scheme: str
    host: str  # lower case, IDNA-encoded, no brackets or trailing dot; IP addresses canonical
    port: int
    path: str  # without its trailing slash

    @property
    def url(self) -> str:
        """The URL rebuilt from the checked parts: what is checked is what is called."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if self.port == DEFAULT_PORTS[self.scheme] else f":{self.port}"
        return f"{self.scheme}://{host}{port}{self.path}"

    def is_within(self, allowed: BaseUrl) -> bool:
        """Same scheme, host and port, and ``allowed``'s path is a whole-segment prefix of ours."""
        return ((self.scheme, self.host, self.port) == (allowed.scheme, allowed.host, allowed.port)
                and (self.path == allowed.path or self.path.startswith(allowed.path + "/")))


def parse_base_url(url: str) -> BaseUrl:
    """Return ``url`` taken apart; raise Refused unless it is a plain http(s) base URL."""
    if not url.isprintable() or " " in url or "\\" in url:
        raise Refused("is not a valid URL")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Refused("is not a valid URL (check its host and port)") from None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise Refused("must be an http(s) URL")
    if "@" in parts.netloc:
        raise Refused("must not contain a user name or password")
    if "?" in url or "#" in url:
        raise Refused("must be a base URL, without a query or a fragment")
    if port == 0:
        raise Refused("is not a valid URL (check its host and port)")
    if any(segment in {".", ".."} for segment in unquote(parts.path).split("/")):
        raise Refused("must not contain '.' or '..' path segments")
    return BaseUrl(scheme=parts.scheme, host=_normal_host(parts.hostname), port=port or DEFAULT_PORTS[parts.scheme],
                   path=parts.path.rstrip("/"))


def _normal_host(hostname: str) -> str:
    host = hostname[:-1] if hostname.endswith(".") else hostname
    if "%" not in host:  # an IPv6 zone (fe80::1%eth0) is no address a flow may name
        try:
            return ipaddress.ip_address(host).compressed
        except ValueError:
            pass
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise Refused("has an invalid host name") from None
    if not _HOST_NAME.match(host):
        raise Refused("has an invalid host name")
    return host


def allowed_base_urls() -> tuple[BaseUrl, ...]:
    """``settings.MODEL_ALLOWED_BASE_URLS``, parsed."""
    return parse_allowed_base_urls(tuple(settings.MODEL_ALLOWED_BASE_URLS))


@functools.lru_cache(maxsize=8)
def parse_allowed_base_urls(entries: tuple[str, ...], setting: str = "MODEL_ALLOWED_BASE_URLS") -> tuple[BaseUrl, ...]:
    """Parse an allow list; raise ImproperlyConfigured naming an entry that is no plain base URL."""
    parsed = []
    for number, entry in enumerate(entries, start=1):
        try:
            parsed.append(parse_base_url(entry.strip()))
        except Refused as refusal:
            # By number: the entry itself may hold a password.
            raise ImproperlyConfigured(f"{setting}: entry {number} {refusal}") from None
    return tuple(parsed)


def is_allowed(base_url: BaseUrl) -> bool:
    """Did the operator allow flows to call ``base_url`` whatever it resolves to?"""
    return any(base_url.is_within(allowed) for allowed in allowed_base_urls())


def is_public(address: IPAddress) -> bool:
    """Is ``address`` on the public internet, and nothing else?

    Not loopback, private, shared (100.64/10), link-local, multicast, reserved, unspecified,
    documentation or site-local; an IPv6 address that carries an IPv4 one (IPv4-mapped, 6to4,
    NAT64) is judged by that IPv4 address. ``is_global`` alone is not enough on Python 3.11:
    it calls multicast, site-local and IPv4-compatible addresses global.
    """
    if isinstance(address, ipaddress.IPv6Address):
        carried = address.ipv4_mapped or address.sixtofour
        if carried is None and address in _NAT64:
            carried = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if carried is not None:
            return is_public(carried)
        if address in _IPV4_COMPATIBLE or address.is_site_local:
            return False
    return address.is_global and not (
        address.is_private or address.is_loopback or address.is_link_local or address.is_multicast
        or address.is_reserved or address.is_unspecified
    )


def _is_public_sockaddr(sockaddr: tuple) -> bool:
    try:
        return is_public(ipaddress.ip_address(sockaddr[0]))
    except ValueError:
        return False


def resolve(host: str, port: int) -> list[tuple]:
    """Every ``getaddrinfo`` entry of ``host`` for a TCP connection; raise HostNotFound."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise HostNotFound(host) from error
    if not found:
        raise HostNotFound(host)
    return found


def require_public(host: str, port: int, *, setting: str = "MODEL_ALLOWED_BASE_URLS",
                   subject: str = "the base URL's host") -> list[tuple]:
    """Resolve ``host`` and return its addresses; raise Refused when any of them is not public.

    Any, not all: a name that also resolves to an internal address may be answered with it
    on the next lookup, or the client may try it first. ``setting`` is the allow list that the
    refusal names (``URL_ALLOWED_PREFIXES`` for pages, ``flows.engine.http``).
    """
    found = resolve(host, port)
    hidden = sorted({info[4][0] for info in found if not _is_public_sockaddr(info[4])})
    if hidden:
        # The addresses go to the operator's log only: to the caller they would map the network.
        logger.warning("Refused a host a flow chose (%s): %r resolves to %s", setting, host, ", ".join(hidden))
        raise Refused(f"is refused: {subject} {host!r} resolves to a non-public address; "
                      f"an administrator can allow it with {setting}")
    return found


# --- The connection that goes where the check said ---------------------------------------------

async def require_public_async(host: str, port: int, *, setting: str = "MODEL_ALLOWED_BASE_URLS",
                               subject: str = "the base URL's host") -> list[tuple]:
    """``require_public`` without blocking the event loop (the lookup runs on a thread)."""
    lookup = functools.partial(require_public, host, port, setting=setting, subject=subject)
    return await asyncio.get_running_loop().run_in_executor(None, lookup)


def dial(address: str, port: int) -> tuple[str, int]:
    """Where a connection to a checked ``address`` goes: there. The tests' seam."""
    return address, port


class PublicOnlyConnector(aiohttp.TCPConnector):
    """aiohttp's connector, resolving once and connecting only to checked addresses.

    Every host is resolved here, IP literals included (aiohttp's own resolution would take
    those as they are), and each address checked; aiohttp then connects to those addresses
    while TLS verifies, and SNI and ``Host`` carry, the host name the URL gave. ``allow_setting``
    and ``subject`` word the refusal (a subclass serves page fetches).
    """

    allow_setting = "MODEL_ALLOWED_BASE_URLS"
    subject = "the base URL's host"

    async def _resolve_host(self, host: str, port: int, traces=None) -> list[ResolveResult]:
        try:
            found = await require_public_async(host, port, setting=self.allow_setting, subject=self.subject)
        except HostNotFound as error:
            raise OSError(f"could not resolve {host!r}") from error
        results: list[ResolveResult] = []
        for family, _, proto, _, sockaddr in found:
            address, target_port = dial(sockaddr[0], port)
            results.append({"hostname": host, "host": address, "port": target_port, "family": family,
                            "proto": proto, "flags": socket.AI_NUMERICHOST})
        return results
