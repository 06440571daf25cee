"""Where a request came from, trusting a proxy's forwarding header only when the proxy is ours.

``REMOTE_ADDR`` is the direct peer. A header such as ``X-Forwarded-For`` can be written by
anybody, so it is read only when that peer is listed in ``TRUSTED_PROXIES`` (addresses or
CIDR networks). Each proxy appends the address it received the request from, so the header
is read from the right: the first address that is not one of our proxies is the client.
Everything to its left was written by the client itself and is ignored.

A proxy on the same machine may talk to the server over a Unix socket instead: the peer then has
no IP address (servers leave ``REMOTE_ADDR`` empty or unset, or put the socket's path there).
Listing the literal entry ``unix`` in TRUSTED_PROXIES trusts such a peer, so the header names the
client; without it, the client's address is unknown (None).
"""

from __future__ import annotations

import functools
import ipaddress

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
UNIX_SOCKET = "unix"  # the TRUSTED_PROXIES entry for a proxy connected over a Unix socket


@functools.lru_cache(maxsize=4096)  # every request parses its peer's address, often more than once
def parse_ip(value: str) -> IPAddress | None:
    """Return the address in ``value`` (IPv4-mapped IPv6 as IPv4, brackets allowed), or None."""
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_networks(entries) -> tuple[IPNetwork, ...]:
    """Return the networks for ``entries`` ("10.0.0.1", "10.0.0.0/8", "::1"); raise ValueError on a bad one."""
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())


@functools.lru_cache(maxsize=1024)
def cached_networks(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """``parse_networks``, once per process for each list (TRUSTED_PROXIES, a key's allowed IPs)."""
    return parse_networks(entries)


def parse_proxies(entries) -> tuple[tuple[IPNetwork, ...], bool]:
    """Return TRUSTED_PROXIES as ``(networks, whether a Unix-socket peer is trusted)``; raise ValueError on a bad entry."""
    entries = [entry.strip() for entry in entries]
    unix = any(entry.lower() == UNIX_SOCKET for entry in entries)
    return parse_networks(entry for entry in entries if entry.lower() != UNIX_SOCKET), unix


@functools.lru_cache(maxsize=64)
def _trusted_proxies(entries: tuple[str, ...]) -> tuple[tuple[IPNetwork, ...], bool]:
    return parse_proxies(entries)


def is_in_networks(address: str | None, entries: tuple[str, ...]) -> bool:
    """Whether ``address`` (a client IP, possibly None when unknown) lies in one of ``entries``."""
    parsed = parse_ip(address or "")
    return parsed is not None and _in_any(parsed, cached_networks(entries))


def _meta_name(header: str) -> str:
    return "HTTP_" + header.strip().upper().replace("-", "_")


def client_ip(request) -> str | None:
    """Return the client's address as a string, or None when the peer's address is unknown.

    Worked out once per request (the key check, the audit line and the request log all ask)."""
    http_request = getattr(request, "_request", request)  # DRF's Request wraps Django's
    known = http_request.__dict__.get("_client_ip", _UNKNOWN)
    if known is _UNKNOWN:
        known = http_request._client_ip = _client_ip(http_request)
    return known


_UNKNOWN = object()


def _client_ip(request) -> str | None:
    remote = parse_ip(request.META.get("REMOTE_ADDR") or "")
    networks, unix = _trusted_proxies(tuple(settings.TRUSTED_PROXIES))
    if remote is None:
        if not unix:  # a Unix-socket peer that is not ours to believe, or no peer address at all
            return None
    elif not networks or not _in_any(remote, networks):
        return str(remote)
    hops = [hop for hop in request.META.get(_meta_name(settings.CLIENT_IP_HEADER), "").split(",") if hop.strip()]
    client = remote
    for hop in reversed(hops):
        address = parse_ip(hop)
        if address is None:  # garbage from the client's side: the last good hop is the best we know
            break
        client = address
        if not _in_any(address, networks):
            break
    return None if client is None else str(client)


def _in_any(address: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    return any(address.version == network.version and address in network for network in networks)
