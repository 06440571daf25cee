"""Keep API keys out of every log line, in whatever form the server would have accepted them.

A request line shows the query string as the client sent it, percent-encoded. The server decodes
it before reading ``x-api-key`` (Django's QueryDict), so ``?x%2Dapi-key=lfsk%5F...`` is a working
key: both the parameter's name and the key itself are matched here in any mix of plain and
percent-encoded characters, and the line is redacted before it is written.
"""

from __future__ import annotations

import logging
import re

# Only crypto, which needs no Django: this module is loaded while logging is configured, before the apps.
from .crypto import CHECKSUM_LENGTH, LOOKUP_ID_LENGTH, PREFIX, SECRET_LENGTH, mask


def _char(character: str) -> str:
    """A regex for one character, written plainly or percent-encoded (either case of hex, of letter)."""
    forms = {character.lower(), character.upper()}
    encoded = "|".join(f"%{ord(form):02x}" for form in sorted(forms))
    return f"(?:{re.escape(character)}|{encoded})"


QUERY_PARAMETER = "x-api-key"  # apikeys.authentication.QUERY_PARAMETER (tested to agree)
_ALNUM = r"(?:[0-9A-Za-z]|%(?:3[0-9]|4[1-9a-f]|5[0-9a]|6[1-9a-f]|7[0-9a]))"
# The parameter the server reads, in any encoding and case; its value runs to the next separator.
_QUERY_KEY = re.compile(
    r"((?:^|[?&;\s\"'])" + "".join(_char(c) for c in QUERY_PARAMETER) + r"=)[^&\s\"'#]*", re.IGNORECASE
)
# A key anywhere (a path, another parameter, a Referer), in any mix of plain and encoded characters.
_ENCODED_KEY = re.compile(
    "".join(_char(c) for c in PREFIX) + f"({_ALNUM}{{{LOOKUP_ID_LENGTH}}})" + _char("_")
    + f"{_ALNUM}{{{SECRET_LENGTH + CHECKSUM_LENGTH}}}(?!{_ALNUM})",
    re.IGNORECASE,
)
_PERCENT = re.compile(r"%([0-9a-fA-F]{2})")


def _masked(match: re.Match) -> str:
    lookup_id = _PERCENT.sub(lambda escape: chr(int(escape.group(1), 16)), match.group(1))
    return mask(lookup_id)


def redact_text(text: str) -> str:
    """Hide the value of an ``x-api-key`` parameter, and anything that decodes to one of our keys."""
    if "=" in text:
        text = _QUERY_KEY.sub(r"\1[REDACTED]", text)
    return _ENCODED_KEY.sub(_masked, text)


class RedactApiKeysFilter(logging.Filter):
    """Keep API keys out of every log line, whatever logged them (request lines above all)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is logging's problem, not ours
            return True
        cleaned = redact_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True
