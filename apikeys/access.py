"""What a key may do: which flows, which permissions, from which addresses, and until when.

``build_terms`` turns raw input into a valid KeyAccess and expiry, with the messages below: the
one validation that every entry point calls (the API Keys pages, the key API, the admin,
``createapikey``), each only naming its own fields. The limits are stored on the key row (see
``ApiKey.all_flows``), so checking them costs a request no query.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import itertools
import re
import uuid
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.utils import timezone

from flows.models import Flow

from .models import PERMISSIONS, ApiKey

MAX_ALLOWED_IPS = 50
MAX_SCOPED_FLOWS = 100
MAX_LIFETIME = datetime.timedelta(days=3650)
# Entries read before counting (duplicates are dropped): bounds the work a huge list can cause.
_MAX_RAW_ENTRIES = 10 * max(MAX_ALLOWED_IPS, MAX_SCOPED_FLOWS)
_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_SEPARATORS = re.compile(r"[\s,]+")

# Every message about a key's access and expiry, whichever way they were given.
NO_PERMISSION = "Choose at least one permission."
NOT_A_PERMISSION = "“{value}” is not a permission: use run, read or write."
NOT_AN_ADDRESS = ("“{value}” is not an IPv4 or IPv6 address or CIDR range (e.g. 203.0.113.7, 10.0.0.0/8, "
                  "2001:db8::/32).")
WHOLE_FAMILY = ("The allowed IPs cover every {families} address, which is no limit: leave them empty to allow "
                "any address, or list the networks the key is used from.")
TOO_MANY_ADDRESSES = f"At most {MAX_ALLOWED_IPS} addresses or ranges (there are {{count}}): use wider CIDR ranges."
NOT_A_FLOW = "“{value}” is not one of {whose} flows."
TOO_MANY_FLOWS = f"At most {MAX_SCOPED_FLOWS} flows (there are {{count}}): choose all flows instead."
NO_FLOW = "Choose at least one flow, or all flows."
FLOWS_WITH_ALL_FLOWS = "Leave the flows out when the key may use all flows."
EXPIRY_NOT_DAYS = "The expiry must be a whole number of days."
EXPIRY_PAST = "The expiry must be in the future."
EXPIRY_TOO_FAR = f"The expiry must be at most ten years ({MAX_LIFETIME.days} days) ahead."

ABSENT = object()  # an expiry not given at all (None is "never")


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


@dataclasses.dataclass(frozen=True)
class KeyTerms:
    """A key's valid access, and its expiry (None: never, or not given)."""

    access: KeyAccess
    expires_at: datetime.datetime | None = None


def build_terms(
    owner,
    *,
    current: KeyAccess | None = None,
    all_flows: bool | None = None,
    flow_ids: Iterable | None = None,
    permissions: Iterable | str | None = None,
    allowed_ips: Iterable | str | None = None,
    expires_at=ABSENT,
    expires_in_days=ABSENT,
    whose: str = "your",
    now: datetime.datetime | None = None,
) -> KeyTerms:
    """Return the valid access and expiry that this raw input asks for, or raise ValidationError.

    What is left out (None) keeps ``current`` (a new key: full access). Sending ``flow_ids``
    alone limits the key to them; ``all_flows=True`` lifts the limit (with no flows named). A
    scope that is given must reach at least one flow; a key whose flows were all deleted keeps
    reaching none until its scope is given again. Flows must be ``owner``'s (another user's id
    reads like one that does not exist, one query). The expiry, as a moment (``expires_at``) or
    days from now (``expires_in_days``), None for never, must be in the future and at most
    ten years ahead. ``whose`` names the owner in messages ("your", "the key's user's").

    The error is a dict, ``{field: [message, ...]}`` with fields among ``all_flows``, ``flow_ids``,
    ``permissions``, ``allowed_ips`` and ``expires_at`` (each entry point maps them to its own),
    every problem at once, one message per bad entry.
    """
    current = current or KeyAccess()
    errors: dict[str, list[str]] = {}

    def checked(field: str, clean, *args):
        try:
            return clean(*args)
        except ValidationError as error:
            errors[field] = error.messages
            return None

    scope_given = all_flows is not None or flow_ids is not None
    if all_flows is None:
        all_flows = current.all_flows if flow_ids is None else False
    cleaned_flows: tuple[str, ...]
    if all_flows:
        if flow_ids:
            errors["flow_ids"] = [FLOWS_WITH_ALL_FLOWS]
        cleaned_flows = ()
    elif flow_ids is None:
        cleaned_flows = current.flow_ids  # validated when they were set
    else:
        cleaned_flows = checked("flow_ids", clean_flow_ids, owner, flow_ids, whose)
    if scope_given and not all_flows and cleaned_flows == ():
        errors["flow_ids"] = [NO_FLOW]
    cleaned_permissions = current.permissions if permissions is None else checked(
        "permissions", clean_permissions, split_entries(permissions) if isinstance(permissions, str) else permissions)
    cleaned_ips = current.allowed_ips if allowed_ips is None else checked(
        "allowed_ips", clean_allowed_ips, allowed_ips)
    expiry = checked("expires_at", clean_expiry, expires_at, expires_in_days, now or timezone.now())
    if errors:
        raise ValidationError(errors)
    access = KeyAccess(all_flows=all_flows, flow_ids=cleaned_flows, permissions=cleaned_permissions,
                       allowed_ips=cleaned_ips)
    return KeyTerms(access=access, expires_at=expiry)


def clean_expiry(expires_at=ABSENT, expires_in_days=ABSENT, now: datetime.datetime | None = None):
    """Return the expiry (None: never or not given): in the future, at most MAX_LIFETIME ahead."""
    now = now or timezone.now()
    if expires_in_days is not ABSENT and expires_in_days is not None:
        try:
            days = int(str(expires_in_days).strip())
        except ValueError:
            raise ValidationError(EXPIRY_NOT_DAYS) from None
        if days < 1:
            raise ValidationError(EXPIRY_PAST)
        if days > MAX_LIFETIME.days:
            raise ValidationError(EXPIRY_TOO_FAR)
        return now + datetime.timedelta(days=days)
    if expires_at is ABSENT or expires_at is None:
        return None
    if expires_at <= now:
        raise ValidationError(EXPIRY_PAST)
    if expires_at > now + MAX_LIFETIME:
        raise ValidationError(EXPIRY_TOO_FAR)
    return expires_at


def clean_permissions(values: Iterable[str]) -> tuple[str, ...]:
    """Return the permissions in their usual order (run, read, write); at least one, nothing else."""
    wanted = {str(value).strip() for value in _bounded(values)}
    unknown = sorted(wanted - set(PERMISSIONS))
    if unknown:
        raise ValidationError([NOT_A_PERMISSION.format(value=value[:60]) for value in unknown])
    if not wanted:
        raise ValidationError(NO_PERMISSION)
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
    entries = list(_bounded(entries))
    if len(entries) > _MAX_RAW_ENTRIES:
        raise ValidationError(TOO_MANY_ADDRESSES.format(count=f"more than {_MAX_RAW_ENTRIES}"))
    networks, errors = [], []
    for entry in (str(entry).strip() for entry in entries):
        if not entry:
            continue
        network = _network(entry)
        if network is None:
            errors.append(NOT_AN_ADDRESS.format(value=entry[:60]))
        elif str(network) not in networks:
            networks.append(str(network))
    if errors:
        raise ValidationError(errors)
    whole_families = _families_covered_whole(networks)
    if whole_families:
        raise ValidationError(WHOLE_FAMILY.format(families=" and every ".join(whole_families)))
    if len(networks) > MAX_ALLOWED_IPS:
        raise ValidationError(TOO_MANY_ADDRESSES.format(count=len(networks)))
    return tuple(networks)


def _families_covered_whole(networks: list[str]) -> list[str]:
    """``["IPv4"]``, ``["IPv6"]``, both or neither: the families that the networks, together, cover
    entirely (``0.0.0.0/0``, ``::/0``, or halves such as ``0.0.0.0/1`` with ``128.0.0.0/1``).

    Such a list would show the key as "IP-limited" while refusing nobody of that family.
    """
    parsed = [ipaddress.ip_network(network) for network in networks]
    ipv4 = [network for network in parsed if isinstance(network, ipaddress.IPv4Network)]
    ipv6 = [network for network in parsed if isinstance(network, ipaddress.IPv6Network)]
    covered = []
    if any(network.prefixlen == 0 for network in ipaddress.collapse_addresses(ipv4)):
        covered.append("IPv4")
    if any(network.prefixlen == 0 for network in ipaddress.collapse_addresses(ipv6)):
        covered.append("IPv6")
    return covered


def _network(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    if "%" in entry:  # an IPv6 zone names an interface of this machine, never a client
        return None
    try:
        network = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return None
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96 and network.subnet_of(_IPV4_MAPPED):
        network = ipaddress.IPv4Network((int(network.network_address) & 0xFFFFFFFF, network.prefixlen - 96))
    return network


def clean_flow_ids(owner, values: Iterable, whose: str = "your") -> tuple[str, ...]:
    """Return the ids of ``owner``'s flows among ``values`` (in order, once each), or raise.

    Another user's flow id gets the same message as an id that does not exist, so a key's
    settings never tell whether someone else's flow is there. One query.
    """
    values = list(_bounded(values))
    if len(values) > _MAX_RAW_ENTRIES:
        raise ValidationError(TOO_MANY_FLOWS.format(count=f"more than {_MAX_RAW_ENTRIES}"))
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
        raise ValidationError(TOO_MANY_FLOWS.format(count=len(wanted)))
    owned = {str(pk) for pk in Flow.objects.owned_by(owner).filter(pk__in=wanted).values_list("pk", flat=True)}
    bad += [flow_id for flow_id in wanted if flow_id not in owned]
    if bad:
        raise ValidationError([NOT_A_FLOW.format(value=value[:60], whose=whose) for value in bad])
    return tuple(wanted)


def _bounded(values: Iterable) -> Iterable:
    """At most one entry more than anyone may give: enough to say there are too many, no more work."""
    return itertools.islice(values, _MAX_RAW_ENTRIES + 1)


def flow_names(flow_ids: Iterable[str]) -> dict[str, str]:
    """``{id: name}`` for the audit log's words (one query; none for no ids)."""
    ids = list(flow_ids)
    if not ids:
        return {}
    return {str(pk): name for pk, name in Flow.objects.filter(pk__in=ids).values_list("pk", "name")}
