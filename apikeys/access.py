"""What a key may do: which flows, which permissions, from which addresses.

Validated here, once, for every way of setting them (the API Keys pages, the key API,
``createapikey``, the admin); stored on the key row (see ``ApiKey.all_flows``) so that checking
them costs a request no query. Every ``clean_*`` raises Django's ValidationError with one
message per bad entry.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import uuid
from collections.abc import Iterable

from django.core.exceptions import ValidationError

from flows.models import Flow

from .models import PERMISSIONS, ApiKey

MAX_ALLOWED_IPS = 50
MAX_SCOPED_FLOWS = 100
_IPV4_MAPPED = ipaddress.ip_network("::ffff:0:0/96")
_SEPARATORS = re.compile(r"[\s,]+")


@dataclasses.dataclass(frozen=True)
class KeyAccess:
    """A key's limits. The default is full access: every flow, every permission, from anywhere."""

    all_flows: bool = True
    flow_ids: tuple[str, ...] = ()
    permissions: tuple[str, ...] = tuple(str(permission) for permission in PERMISSIONS)
    allowed_ips: tuple[str, ...] = ()

    def __post_init__(self):
        if self.all_flows and self.flow_ids:
            object.__setattr__(self, "flow_ids", ())  # a list that means nothing would mislead later

    @classmethod
    def of(cls, api_key: ApiKey) -> KeyAccess:
        return cls(all_flows=api_key.all_flows, flow_ids=tuple(api_key.flow_ids),
                   permissions=tuple(api_key.permissions), allowed_ips=tuple(api_key.allowed_ips))

    def as_fields(self) -> dict:
        """The ApiKey field values (JSON lists) for this access."""
        return {"all_flows": self.all_flows, "flow_ids": list(self.flow_ids),
                "permissions": list(self.permissions), "allowed_ips": list(self.allowed_ips)}


def clean_permissions(values: Iterable[str]) -> tuple[str, ...]:
    """Return the permissions in their usual order (run, read, write); at least one, nothing else."""
    wanted = {str(value).strip() for value in values}
    unknown = sorted(wanted - set(PERMISSIONS))
    if unknown:
        raise ValidationError([f"“{value}” is not a permission: use run, read or write." for value in unknown])
    if not wanted:
        raise ValidationError("Choose at least one permission: run, read or write.")
    return tuple(str(permission) for permission in PERMISSIONS if permission in wanted)


def split_entries(text: str) -> list[str]:
    """The entries of a textarea or a command-line value: one per line, or separated by commas or spaces."""
    return [entry for entry in _SEPARATORS.split(text) if entry]


def clean_allowed_ips(entries: Iterable[str] | str) -> tuple[str, ...]:
    """Return each address or CIDR range as its network (``203.0.113.7/32``, ``2001:db8::/32``).

    Host bits are dropped (``10.1.2.3/8`` is ``10.0.0.0/8``), IPv4-mapped IPv6 becomes IPv4
    (client addresses are compared that way), duplicates go. One error per bad entry.
    """
    if isinstance(entries, str):
        entries = split_entries(entries)
    networks, errors = [], []
    for entry in (str(entry).strip() for entry in entries):
        if not entry:
            continue
        network = _network(entry)
        if network is None:
            errors.append(f"“{entry[:60]}” is not an IPv4 or IPv6 address or CIDR range (e.g. 203.0.113.7, "
                          f"10.0.0.0/8, 2001:db8::/32).")
        elif str(network) not in networks:
            networks.append(str(network))
    if errors:
        raise ValidationError(errors)
    whole_families = _families_covered_whole(networks)
    if whole_families:
        raise ValidationError(
            f"The allowed IPs cover every {' and every '.join(whole_families)} address, which is no limit: "
            f"leave them empty to allow any address, or list the networks the key is used from."
        )
    if len(networks) > MAX_ALLOWED_IPS:
        raise ValidationError(f"At most {MAX_ALLOWED_IPS} addresses or ranges (there are {len(networks)}): "
                              f"use wider CIDR ranges.")
    return tuple(networks)


def _families_covered_whole(networks: list[str]) -> list[str]:
    """``["IPv4"]``, ``["IPv6"]``, both or neither: the families that the networks, together, cover
    entirely (``0.0.0.0/0``, ``::/0``, or halves such as ``0.0.0.0/1`` with ``128.0.0.0/1``).

    Such a list would show the key as "IP-limited" while refusing nobody of that family.
    """
    covered = []
    for version, family in ((4, "IPv4"), (6, "IPv6")):
        mine = [ipaddress.ip_network(network) for network in networks if ipaddress.ip_network(network).version == version]
        if any(network.prefixlen == 0 for network in ipaddress.collapse_addresses(mine)):
            covered.append(family)
    return covered


def _network(entry: str):
    if "%" in entry:  # an IPv6 zone names an interface of this machine, never a client
        return None
    try:
        network = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return None
    if network.version == 6 and network.prefixlen >= 96 and network.subnet_of(_IPV4_MAPPED):
        network = ipaddress.IPv4Network((int(network.network_address) & 0xFFFFFFFF, network.prefixlen - 96))
    return network


def clean_flow_ids(owner, values: Iterable) -> tuple[str, ...]:
    """Return the ids of ``owner``'s flows among ``values`` (in order, once each), or raise.

    Another user's flow id gets the same message as an id that does not exist, so a key's
    settings never tell whether someone else's flow is there. One query.
    """
    wanted, bad = [], []
    for value in values:
        try:
            flow_id = str(uuid.UUID(str(value).strip()))
        except ValueError:
            bad.append(str(value))
            continue
        if flow_id not in wanted:
            wanted.append(flow_id)
    if len(wanted) > MAX_SCOPED_FLOWS:
        raise ValidationError(f"At most {MAX_SCOPED_FLOWS} flows (there are {len(wanted)}): "
                              f"choose all flows instead.")
    owned = {str(pk) for pk in Flow.objects.owned_by(owner).filter(pk__in=wanted).values_list("pk", flat=True)}
    bad += [flow_id for flow_id in wanted if flow_id not in owned]
    if bad:
        raise ValidationError([f"“{value[:60]}” is not one of your flows." for value in bad])
    return tuple(wanted)


def describe_flows(access: KeyAccess, names: dict[str, str]) -> str:
    if access.all_flows:
        return "all flows"
    if not access.flow_ids:
        return "no flows"
    return ", ".join(f"“{names.get(flow_id, flow_id)}”" for flow_id in access.flow_ids)


def describe_changes(before: KeyAccess, after: KeyAccess, names: dict[str, str]) -> list[str]:
    """One line per aspect that changed, for the audit log: ``Flows: all flows → “Echo”``."""
    lines = []
    if (before.all_flows, before.flow_ids) != (after.all_flows, after.flow_ids):
        lines.append(f"Flows: {describe_flows(before, names)} → {describe_flows(after, names)}")
    if before.permissions != after.permissions:
        lines.append(f"Permissions: {', '.join(before.permissions)} → {', '.join(after.permissions)}")
    if before.allowed_ips != after.allowed_ips:
        lines.append(f"Allowed IPs: {', '.join(before.allowed_ips) or 'anywhere'} → "
                     f"{', '.join(after.allowed_ips) or 'anywhere'}")
    return lines


def describe(access: KeyAccess, names: dict[str, str]) -> str:
    """The limits of a new key, for its creation event; empty for full access."""
    parts = []
    if not access.all_flows:
        parts.append(f"flows: {describe_flows(access, names)}")
    if access.permissions != KeyAccess().permissions:
        parts.append(f"permissions: {', '.join(access.permissions)}")
    if access.allowed_ips:
        parts.append(f"allowed IPs: {', '.join(access.allowed_ips)}")
    return "; ".join(parts)


def flow_names(flow_ids: Iterable[str]) -> dict[str, str]:
    """``{id: name}`` for the audit log's words (one query; none for no ids)."""
    ids = list(flow_ids)
    if not ids:
        return {}
    return {str(pk): name for pk, name in Flow.objects.filter(pk__in=ids).values_list("pk", "name")}
