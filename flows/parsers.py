"""Request-body parsers for the flows API: a size limit (413), a nesting limit, and FastAPI's
tolerance of content types (Langflow parses the body as JSON whatever the client declared)."""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from rest_framework import exceptions, parsers

from core.api import client_error
from core.jsonlimits import TOO_DEEP, nesting_exceeds
from core.parsers import BodyTooLarge, not_json, refuse_declared_oversize

from .engine.structure import load_json


class LimitedJSONParser(parsers.BaseParser):
    """JSON of at most ``FLOW_MAX_BODY_BYTES``, under any content type; malformed JSON is a 400."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.FLOW_MAX_BODY_BYTES
        refuse_declared_oversize(parser_context, limit)
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise BodyTooLarge(limit)
        if not body.strip():
            return {}
        try:
            value = load_json(body)
        except ValueError as error:
            raise not_json(str(error)) from None
        if nesting_exceeds(value):
            raise not_json(TOO_DEEP)
        return value


class LimitedMultiPartParser(parsers.MultiPartParser):
    """A file upload (``-F file=@flow.json``), refused with 413 when it declares too many bytes,
    and with 400 naming the limit for too many files or fields (Django's DATA_UPLOAD_MAX_NUMBER_*)."""

    def parse(self, stream, media_type=None, parser_context=None):
        refuse_declared_oversize(parser_context, settings.FLOW_MAX_BODY_BYTES)
        try:
            return super().parse(stream, media_type, parser_context)
        except RequestDataTooBig:
            raise BodyTooLarge(settings.DATA_UPLOAD_MAX_MEMORY_SIZE) from None
        except (TooManyFieldsSent, TooManyFilesSent) as error:
            known = client_error(error)
            raise exceptions.ParseError(known[1] if known else None) from None
