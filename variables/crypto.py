"""Encrypt and decrypt Credential values: AES-256-GCM under a versioned server key.

A stored value is ``base64(nonce || ciphertext+tag)``; the key version is stored beside it (its
own column), and the owner's id and the variable's name are bound as associated data, so a
ciphertext copied to another row (another user, another name) fails to decrypt instead of
handing one user's secret to another. Keys come from ``settings.VARIABLE_ENCRYPTION_KEYS``
(``{version: 32 bytes}``), read at each call so that rotation and ``override_settings`` apply.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

NONCE_BYTES = 12


class UndecryptableValue(Exception):
    """The value cannot be decrypted: its key version is not configured, or the key or the row is wrong.

    The message names the variable and what to do, never the ciphertext or any key."""

    status_code = 500

    def __init__(self, name: str, version: int | None):
        self.name = name
        self.version = version
        super().__init__(
            f"The variable '{name}' cannot be decrypted with this server's VARIABLE_ENCRYPTION_KEYS "
            f"(its key version {version} is missing or wrong): ask the operator to restore that key, "
            "or save the variable's value again."
        )


def _keys() -> dict[int, bytes]:
    return settings.VARIABLE_ENCRYPTION_KEYS


def current_version() -> int:
    """The version new values are encrypted under: the highest configured."""
    return max(_keys())


def associated_data(owner_id, name: str) -> bytes:
    """What a ciphertext is bound to: its owner and its name (a copy elsewhere fails)."""
    return f"langflow-variable\x00{owner_id}\x00{name}".encode()


def encrypt(plaintext: str, *, owner_id, name: str) -> tuple[int, str]:
    """Return ``(key version, token)`` for ``plaintext`` under the newest key."""
    version = current_version()
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(_keys()[version]).encrypt(nonce, plaintext.encode(), associated_data(owner_id, name))
    return version, base64.b64encode(nonce + sealed).decode("ascii")


def decrypt(token: str, *, version: int | None, owner_id, name: str) -> str:
    """Return the plaintext; raise UndecryptableValue (naming ``name``) when it cannot be had."""
    key = _keys().get(version) if version is not None else None
    if key is None:
        raise UndecryptableValue(name, version)
    try:
        raw = base64.b64decode(token.encode("ascii"), validate=True)
        plain = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], associated_data(owner_id, name))
        return plain.decode()
    except (InvalidTag, ValueError, UnicodeError):
        raise UndecryptableValue(name, version) from None
