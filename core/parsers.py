"""The API's JSON request bodies: bounded in size and nesting, every malformed one a 400.

DRF's JSONParser lets a RecursionError (absurd nesting) and Python's integer-digits ValueError
through with messages naming internals; this one answers each with a short ``detail``.
"""

from __future__ import annotations

import json

from django.conf import settings
from rest_framework import exceptions, parsers, status

from .jsonlimits import TOO_DEEP, nesting_exceeds


class BodyTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "body_too_large"

    def __init__(self, limit: int):
        super().__init__(f"The request body is larger than {limit} bytes.")


def refuse_declared_oversize(parser_context, limit: int) -> None:
    """413 before reading a byte when the body declares more than ``limit`` bytes."""
    request = (parser_context or {}).get("request")
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
    except ValueError:
        declared = 0
    if declared > limit:
        raise BodyTooLarge(limit)


def not_json(reason: str) -> exceptions.ParseError:
    return exceptions.ParseError(f"The request body is not valid JSON: {reason}.")


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def loads(raw: bytes | str) -> object:
    """Parse a JSON body (UTF-8, NaN and Infinity refused, at most MAX_JSON_DEPTH deep); raise ParseError."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise not_json("it is not UTF-8 text") from None
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise not_json(TOO_DEEP) from None
    except ValueError as error:
        # json's messages point at a line and column; Python's integer-digits limit names internals.
        reason = "a number has too many digits" if "digits" in str(error) else str(error)
        raise not_json(reason) from None
    if nesting_exceeds(value):
        raise not_json(TOO_DEEP)
    return value


class JSONBodyParser(parsers.JSONParser):
    """``application/json`` within DATA_UPLOAD_MAX_MEMORY_SIZE (Django refuses more: 413), nested at most
    MAX_JSON_DEPTH deep."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None:
            refuse_declared_oversize(parser_context, limit)
            body = stream.read(limit + 1)
            if len(body) > limit:
                raise BodyTooLarge(limit)
        else:
            body = stream.read()
        return loads(body)
