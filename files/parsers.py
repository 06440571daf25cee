"""The upload's body: one file of at most FILES_MAX_UPLOAD_BYTES, counted as it streams in.

A body that declares more (Content-Length) is refused before it is parsed; one that sends more
than it declared, or a file past the limit, is stopped at the limit, its temporary file deleted.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import TooManyFieldsSent, TooManyFilesSent
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from rest_framework import exceptions, parsers, status

from core.api import client_error
from core.parsers import refuse_declared_oversize

# Room for the multipart framing (boundaries, part headers, a few small fields) beyond the file.
FRAMING_BYTES = 64 * 1024
ONE_FILE = "Send one file per request, as the 'file' field."


class UploadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "file_too_large"


def upload_too_large() -> UploadTooLarge:
    limit = settings.FILES_MAX_UPLOAD_BYTES
    return UploadTooLarge(f"The file is larger than FILES_MAX_UPLOAD_BYTES ({limit:,} bytes).")


class LimitedUploadHandler(FileUploadHandler):
    """First of the handlers: counts each file's bytes and stops the upload at the limit, or at
    a second file; the handlers after it (memory, then a temporary file) store what it passes."""

    def __init__(self, request=None):
        super().__init__(request)
        self.limit = settings.FILES_MAX_UPLOAD_BYTES
        self.files = 0
        self.refusal: exceptions.APIException | None = None

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.files += 1
        if self.files > 1:
            self.refusal = exceptions.ParseError(ONE_FILE)
            raise StopUpload(connection_reset=True)

    def receive_data_chunk(self, raw_data, start):
        if start + len(raw_data) > self.limit:
            self.refusal = upload_too_large()
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size):
        return None


class FileUploadParser(parsers.MultiPartParser):
    """``multipart/form-data`` with one file, within FILES_MAX_UPLOAD_BYTES (413 past it)."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.FILES_MAX_UPLOAD_BYTES
        try:
            refuse_declared_oversize(parser_context, limit + FRAMING_BYTES)
        except exceptions.APIException:
            raise upload_too_large() from None
        request = parser_context["request"]
        counter = LimitedUploadHandler(request._request)
        request._request.upload_handlers = [counter, *request._request.upload_handlers]
        try:
            result = super().parse(stream, media_type, parser_context)
        except (TooManyFieldsSent, TooManyFilesSent) as error:
            known = client_error(error)
            raise exceptions.ParseError(known[1] if known else None) from None
        if counter.refusal is not None:
            raise counter.refusal
        return result
