"""Generate, check and digest API keys. Pure functions: no Django models needed.

A key reads ``lfsk_<lookup id>_<secret><checksum>``:

* ``lfsk_``: the product's prefix, so secret scanners can tell our keys from others;
* lookup id: 12 base62 characters, public, indexed, shown in the masked key;
* secret: 32 base62 characters from ``secrets`` (about 190 bits);
* checksum: CRC32 of everything before it, as 6 base62 characters, so a mistyped or
  truncated key is refused without a database query (the GitHub token design).

Only characters that a double click selects as one word are used.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PREFIX = "lfsk_"
LOOKUP_ID_LENGTH = 12
SECRET_LENGTH = 32
CHECKSUM_LENGTH = 6
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
KEY_LENGTH = len(PREFIX) + LOOKUP_ID_LENGTH + 1 + SECRET_LENGTH + CHECKSUM_LENGTH

# For secret scanners (documented in the README).
KEY_PATTERN = re.compile(
    rf"\b{PREFIX}[0-9A-Za-z]{{{LOOKUP_ID_LENGTH}}}_[0-9A-Za-z]{{{SECRET_LENGTH + CHECKSUM_LENGTH}}}\b"
)
_FULL_MATCH = re.compile(
    rf"{PREFIX}(?P<lookup>[0-9A-Za-z]{{{LOOKUP_ID_LENGTH}}})_"
    rf"(?P<secret>[0-9A-Za-z]{{{SECRET_LENGTH}}})(?P<checksum>[0-9A-Za-z]{{{CHECKSUM_LENGTH}}})"
)


@dataclass(frozen=True)
class ParsedKey:
    lookup_id: str
    raw: str


def _random_base62(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, remainder = divmod(number, 62)
        digits.append(ALPHABET[remainder])
    return "".join(reversed(digits))


def checksum(body: str) -> str:
    """Return the 6-character base62 CRC32 of ``body``."""
    return _base62(binascii.crc32(body.encode("ascii")), CHECKSUM_LENGTH)


def new_lookup_id() -> str:
    return _random_base62(LOOKUP_ID_LENGTH)


def build_key(lookup_id: str, secret: str) -> str:
    body = f"{PREFIX}{lookup_id}_{secret}"
    return body + checksum(body)


def generate_key(lookup_id: str | None = None) -> tuple[str, str]:
    """Return ``(lookup_id, raw_key)`` for a new key; pass ``lookup_id`` to re-key a record."""
    lookup_id = lookup_id or new_lookup_id()
    return lookup_id, build_key(lookup_id, _random_base62(SECRET_LENGTH))


def parse_key(raw: str) -> ParsedKey | None:
    """Return the parsed key, or ``None`` when it is malformed or its checksum is wrong."""
    if not isinstance(raw, str) or len(raw) != KEY_LENGTH:
        return None
    match = _FULL_MATCH.fullmatch(raw)
    if match is None:
        return None
    body = raw[: -CHECKSUM_LENGTH]
    if not hmac.compare_digest(checksum(body), match["checksum"]):
        return None
    return ParsedKey(lookup_id=match["lookup"], raw=raw)


def digest(raw: str, pepper: str) -> str:
    """Return the hex HMAC-SHA256 of the key under the pepper.

    A fast keyed hash is right for a 190-bit random secret: nothing to brute force, and a
    stolen database is useless without the pepper, which lives outside it.
    """
    return hmac.new(pepper.encode(), raw.encode(), hashlib.sha256).hexdigest()


def digests_match(expected: str, candidate: str) -> bool:
    return hmac.compare_digest(expected.encode(), candidate.encode())


def mask(lookup_id: str) -> str:
    """Return the displayable form of a key: its public part, then asterisks."""
    return f"{PREFIX}{lookup_id}_" + "*" * 8
