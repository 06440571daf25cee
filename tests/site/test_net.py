"""core.net.client_ip: the forwarding header counts only from a trusted proxy."""

import pytest
from django.test import RequestFactory

from core.net import cached_networks, client_ip, is_in_networks, parse_networks, parse_proxies

factory = RequestFactory()


def _ip(remote, forwarded=None, **extra):
    meta = {"REMOTE_ADDR": remote, **extra}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    return client_ip(factory.get("/", **meta))


def test_without_trusted_proxies_the_peer_is_the_client(settings):
    settings.TRUSTED_PROXIES = []
    assert _ip("203.0.113.5", "198.51.100.1") == "203.0.113.5"


def test_an_untrusted_peer_cannot_claim_another_address(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert _ip("203.0.113.5", "198.51.100.1") == "203.0.113.5"


def test_a_trusted_proxy_names_the_client(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.1"]
    assert _ip("10.0.0.1", "198.51.100.1") == "198.51.100.1"


def test_the_client_is_the_first_untrusted_hop_from_the_right(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "192.168.1.1"]
    # The client wrote "1.1.1.1" itself; our two proxies appended what they saw.
    assert _ip("10.0.0.1", "1.1.1.1, 198.51.100.1, 192.168.1.1") == "198.51.100.1"


def test_when_every_hop_is_trusted_the_leftmost_is_used(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert _ip("10.0.0.1", "10.1.1.1, 10.2.2.2") == "10.1.1.1"


def test_garbage_in_the_header_stops_the_walk_at_the_last_good_hop(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert _ip("10.0.0.1", "not-an-ip, 10.2.2.2") == "10.2.2.2"
    assert _ip("10.0.0.1", "") == "10.0.0.1"
    assert _ip("10.0.0.1") == "10.0.0.1"


def test_a_configured_header_replaces_x_forwarded_for(settings):
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    settings.CLIENT_IP_HEADER = "X-Real-IP"
    assert _ip("127.0.0.1", "198.51.100.1", HTTP_X_REAL_IP="203.0.113.9") == "203.0.113.9"


def test_ipv6_and_ipv4_mapped_addresses(settings):
    settings.TRUSTED_PROXIES = ["::1"]
    assert _ip("::1", "[2001:db8::5]") == "2001:db8::5"
    assert _ip("::ffff:203.0.113.5") == "203.0.113.5"


def test_an_unknown_peer_address_gives_none(settings):
    assert _ip("") is None
    assert _ip("unix-socket") is None


def _unix_peer(remote_addr, forwarded=None, header="HTTP_X_FORWARDED_FOR"):
    """A request as a server on a Unix socket passes it on: REMOTE_ADDR empty, missing, or the socket's path."""
    request = factory.get("/")
    if remote_addr is None:
        del request.META["REMOTE_ADDR"]
    else:
        request.META["REMOTE_ADDR"] = remote_addr
    if forwarded is not None:
        request.META[header] = forwarded
    return client_ip(request)


@pytest.mark.parametrize("remote_addr", ["", None, "/run/langflow.sock"])
def test_a_unix_socket_proxy_listed_as_unix_names_the_client(settings, remote_addr):
    settings.TRUSTED_PROXIES = ["unix"]
    assert _unix_peer(remote_addr, "198.51.100.7") == "198.51.100.7"
    assert _unix_peer(remote_addr, "1.1.1.1, 198.51.100.7") == "198.51.100.7"  # the client wrote the left one


@pytest.mark.parametrize("remote_addr", ["", None, "/run/langflow.sock"])
def test_a_unix_socket_peer_is_not_believed_unless_listed(settings, remote_addr):
    settings.TRUSTED_PROXIES = ["127.0.0.1", "10.0.0.0/8"]
    assert _unix_peer(remote_addr, "198.51.100.7") is None


def test_behind_a_unix_socket_the_header_is_walked_past_further_trusted_proxies(settings):
    settings.TRUSTED_PROXIES = ["UNIX", "10.0.0.0/8"]
    assert _unix_peer("", "203.0.113.9, 10.0.0.5") == "203.0.113.9"
    assert _unix_peer("", "10.0.0.5") == "10.0.0.5"  # every hop trusted: the leftmost


def test_behind_a_unix_socket_without_a_usable_header_the_client_is_unknown(settings):
    settings.TRUSTED_PROXIES = ["unix"]
    assert _unix_peer("") is None
    assert _unix_peer("", "not-an-ip") is None
    settings.CLIENT_IP_HEADER = "X-Real-IP"
    assert _unix_peer("", "198.51.100.7", header="HTTP_X_REAL_IP") == "198.51.100.7"


def test_listing_unix_changes_nothing_for_peers_with_an_address(settings):
    settings.TRUSTED_PROXIES = ["unix"]
    assert _ip("203.0.113.5", "198.51.100.1") == "203.0.113.5"


def test_unix_is_a_proxy_entry_never_a_network():
    assert parse_proxies(["unix", " 10.0.0.0/8 "]) == (parse_networks(["10.0.0.0/8"]), True)
    assert parse_proxies(["127.0.0.1"])[1] is False
    with pytest.raises(ValueError):
        parse_networks(["unix"])  # e.g. in a key's allowed IPs


@pytest.mark.parametrize("entries", [["10.0.0.0/33"], ["proxy.example"], ["10.0.0.1/8/2"]])
def test_bad_trusted_proxy_entries_are_refused(entries):
    with pytest.raises(ValueError):
        parse_networks(entries)


@pytest.mark.parametrize(("address", "expected"), [
    ("10.1.2.3", True), ("11.0.0.1", False), ("2001:db8::7", True), ("::ffff:10.1.2.3", True),
    ("[2001:db8::7]", True), (None, False), ("", False), ("garbage", False),
])
def test_is_in_networks_matches_ipv4_and_ipv6_and_never_an_unknown_address(address, expected):
    assert is_in_networks(address, ("10.0.0.0/8", "2001:db8::/32")) is expected


def test_a_list_of_networks_is_parsed_once_per_process():
    entries = ("192.0.2.0/24", "2001:db8:1::/48")
    assert cached_networks(entries) is cached_networks(entries)
