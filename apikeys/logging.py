import logging
import re

from .crypto import redact

_QUERY_KEY = re.compile(r"((?:x-api-key|x%2dapi%2dkey)=)[^&\s\"'#]*", re.IGNORECASE)


def redact_text(text: str) -> str:
    """Hide a key passed in a query string, and anything shaped like one of our keys."""
    return redact(_QUERY_KEY.sub(r"\1[REDACTED]", text))


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
