"""Request-body parsers for the flows API: a size limit (413) and FastAPI's tolerance of
content types (Langflow parses the body as JSON whatever the client declared)."""

from django.conf import settings
from rest_framework import exceptions, parsers, status

from .engine.structure import load_json


class BodyTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "body_too_large"

    def __init__(self):
        super().__init__(f"The request body is larger than {settings.FLOW_MAX_BODY_BYTES} bytes.")


def _refuse_declared_oversize(parser_context) -> None:
    request = (parser_context or {}).get("request")
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
    except ValueError:
        declared = 0
    if declared > settings.FLOW_MAX_BODY_BYTES:
        raise BodyTooLarge()


class LimitedJSONParser(parsers.BaseParser):
    """JSON of at most ``FLOW_MAX_BODY_BYTES``, under any content type; malformed JSON is a 400."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        _refuse_declared_oversize(parser_context)
        limit = settings.FLOW_MAX_BODY_BYTES
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise BodyTooLarge()
        if not body.strip():
            return {}
        try:
            return load_json(body)
        except ValueError as error:
            raise exceptions.ParseError(f"The request body is not valid JSON: {error}") from None


class LimitedMultiPartParser(parsers.MultiPartParser):
    """A file upload (``-F file=@flow.json``), refused with 413 when it declares too many bytes."""

    def parse(self, stream, media_type=None, parser_context=None):
        _refuse_declared_oversize(parser_context)
        return super().parse(stream, media_type, parser_context)
