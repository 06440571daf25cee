"""Langflow's ``/api/v2/files`` API: upload, list, download, rename and delete the caller's files.

The same authentication as the flows API (an API key or a signed-in session): reading needs a
key's ``read`` permission, changing needs ``write``. Files belong to their user, not to a flow,
so a key limited to chosen flows may read them but not change them (every flow of the user
reads them). Another user's file answers 404, exactly like a missing one.
"""

from __future__ import annotations

import asyncio
import uuid

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import SharedDataKeyGrants
from core.openapi import ErrorSerializer

from . import services
from .models import UserFile
from .parsers import FileUploadParser, UploadTooLarge
from .storage import file_storage

NO_FILE = "No file provided: send it as the 'file' field of a multipart/form-data body."
SCOPED_KEY_CANNOT_CHANGE_FILES = ("This API key is limited to chosen flows: it cannot change files, "
                                  "which all of its owner's flows share.")
DOWNLOAD_CHUNK_BYTES = 256 * 1024


class UploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="The file (at most FILES_MAX_UPLOAD_BYTES).")


class UploadedFileSerializer(serializers.ModelSerializer):
    """Langflow's UploadFileResponse."""

    provider = serializers.SerializerMethodField()

    class Meta:
        model = UserFile
        fields = ["id", "name", "path", "size", "provider"]

    def get_provider(self, file) -> str | None:
        return None


class UserFileSerializer(UploadedFileSerializer):
    """A file as Langflow's list shows it."""

    user_id = serializers.UUIDField(source="owner_id", read_only=True)

    class Meta(UploadedFileSerializer.Meta):
        fields = ["id", "user_id", "name", "path", "size", "provider", "created_at", "updated_at"]


class MessageSerializer(serializers.Serializer):
    message = serializers.CharField()


class FileDeletedSerializer(serializers.Serializer):
    detail = serializers.CharField()


class RenameQuerySerializer(serializers.Serializer):
    name = serializers.CharField(max_length=255, help_text="The new name (the extension stays).")


READ, WRITE = "read", "write"


class FileAPIView(APIView):
    permission_classes = [IsAuthenticated, SharedDataKeyGrants]
    key_permissions = {"GET": READ, "POST": WRITE, "PUT": WRITE, "DELETE": WRITE}
    scoped_key_cannot_write = SCOPED_KEY_CANNOT_CHANGE_FILES

    def handle_exception(self, exc):
        if isinstance(exc, services.FileTooLarge):
            exc = UploadTooLarge(str(exc))
        elif isinstance(exc, services.BadFileName):
            exc = exceptions.ParseError(str(exc))
        return super().handle_exception(exc)

    def get_file(self, file_id) -> UserFile:
        try:
            file_uuid = uuid.UUID(str(file_id))
        except ValueError:
            raise exceptions.NotFound(services.FILE_NOT_FOUND) from None
        file = services.owned_files(self.request.user.pk).filter(pk=file_uuid).first()
        if file is None:
            raise exceptions.NotFound(services.FILE_NOT_FOUND)
        return file


TOO_LARGE = OpenApiResponse(ErrorSerializer, description="The file is larger than FILES_MAX_UPLOAD_BYTES, or "
                                                         "would take the user's files past FILES_MAX_USER_BYTES.")


class FileListView(FileAPIView):
    """``GET``: the caller's files; ``POST``: upload one (201); ``DELETE``: delete them all."""

    parser_classes = [FileUploadParser]

    @extend_schema(operation_id="list_files", responses=UserFileSerializer(many=True))
    def get(self, request):
        return Response(UserFileSerializer(services.owned_files(request.user.pk), many=True).data)

    @extend_schema(operation_id="upload_file", request={"multipart/form-data": UploadSerializer},
                   responses={201: UploadedFileSerializer, 413: TOO_LARGE})
    def post(self, request):
        upload = request.FILES.get("file")
        if upload is None or not upload.name:
            raise exceptions.ParseError(NO_FILE)
        file = services.store_file(owner_id=request.user.pk, name=upload.name, content=upload, size=upload.size)
        return Response(UploadedFileSerializer(file).data, status=status.HTTP_201_CREATED)

    @extend_schema(operation_id="delete_all_files", responses={200: MessageSerializer})
    def delete(self, request):
        services.delete_all_files(request.user.pk)
        return Response({"message": "All files deleted successfully"})


@extend_schema_view(get=extend_schema(operation_id="list_files_slash"),
                    post=extend_schema(operation_id="upload_file_slash"),
                    delete=extend_schema(operation_id="delete_all_files_slash"))
class FileListSlashView(FileListView):
    """``/api/v2/files/``: the same, as Langflow also routes it."""


class FileDetailView(FileAPIView):
    """``GET``: download; ``PUT ?name=``: rename; ``DELETE``: delete one file."""

    @extend_schema(operation_id="download_file",
                   responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY,
                                                                                 description="The file's bytes.")})
    def get(self, request, file_id):
        file = self.get_file(file_id)
        try:
            handle = file_storage().open(file.path, "rb")
        except FileNotFoundError:
            raise exceptions.NotFound(services.FILE_NOT_FOUND) from None
        response = FileResponse(handle, as_attachment=True, filename=file.filename,
                                content_type="application/octet-stream")
        # Read off the event loop, a chunk at a time (Django would read a file's iterator whole).
        response.streaming_content = _chunks(handle)
        response["Content-Length"] = str(file.size)
        response["X-Content-Type-Options"] = "nosniff"
        return response

    @extend_schema(operation_id="rename_file", request=None,
                   parameters=[OpenApiParameter("name", str, required=True, description="The new name.")],
                   responses=UploadedFileSerializer)
    def put(self, request, file_id):
        file = self.get_file(file_id)
        serializer = RenameQuerySerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        return Response(UploadedFileSerializer(services.rename_file(file, serializer.validated_data["name"])).data)

    @extend_schema(operation_id="delete_file", responses={200: FileDeletedSerializer})
    def delete(self, request, file_id):
        file = self.get_file(file_id)
        services.delete_file(file)
        return Response({"detail": f"File {file.name} deleted successfully"})


async def _chunks(handle):
    try:
        while chunk := await asyncio.to_thread(handle.read, DOWNLOAD_CHUNK_BYTES):
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)
