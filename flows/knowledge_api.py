"""Langflow's ``/api/v1/knowledge_bases`` routes: list, create, show and delete the caller's
knowledge bases, ingest files or text into one, and page through its chunks.

The same authentication as the other APIs (an API key or a signed-in session): reading needs a
key's ``read`` permission, changing needs ``write``. Knowledge bases belong to their user, not to
a flow, so a key limited to chosen flows may read them but not change them (as files). Another
user's base answers 404, exactly like a missing one.

Unlike Langflow, whose ingestion answers a task id and runs in the background, ingestion here
answers when it is done (``files_processed``, ``chunks_created``): its texts are split and
embedded while the request waits on the event loop, holding no thread. Files are read as the
File component reads them (txt, md, csv, json, pdf, docx...), the whole body within
FLOW_MAX_BODY_BYTES; a JSON body ``{"text": ...}`` ingests text.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core import dbthreads
from core.api import SharedDataKeyGrants, sent_as_rendered
from core.openapi import ErrorSerializer
from knowledge import services
from knowledge.models import KnowledgeBase

from .engine import documents, embeddings
from .engine.components.split_text import merge, pieces
from .engine.knowledge import KnowledgeBaseNotFound, KnowledgeLimitReached
from .engine.limits import ValueTooLarge
from .knowledge import ingest_texts
from .parsers import LimitedJSONParser, LimitedMultiPartParser

logger = logging.getLogger("flows.knowledge_api")

READ, WRITE = "read", "write"
SCOPED_KEY_CANNOT_CHANGE = ("This API key is limited to chosen flows: it cannot change knowledge bases, "
                            "which all of its owner's flows share.")
MAX_CHUNK_SIZE = 100_000
# RecursiveCharacterTextSplitter's separators, as Langflow's ingestion uses them.
SEPARATORS = ("\n\n", "\n", " ", "")


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT


class CreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    embedding_provider = serializers.CharField(max_length=100, required=False, default="OpenAI")
    embedding_model = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class BulkDeleteSerializer(serializers.Serializer):
    kb_names = serializers.ListField(child=serializers.CharField(max_length=200), max_length=500)


class ChunkQuerySerializer(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, default=1)
    limit = serializers.IntegerField(min_value=1, max_value=services.MAX_PAGE, default=50)
    search = serializers.CharField(required=False, allow_blank=True, default="", max_length=1000)


class IngestSerializer(serializers.Serializer):
    text = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    source_name = serializers.CharField(required=False, allow_blank=True, default="", max_length=255)
    chunk_size = serializers.IntegerField(min_value=1, max_value=MAX_CHUNK_SIZE, default=1000)
    chunk_overlap = serializers.IntegerField(min_value=0, max_value=MAX_CHUNK_SIZE, default=200)
    separator = serializers.CharField(required=False, allow_blank=True, default="", max_length=20,
                                      trim_whitespace=False)

    def validate(self, attrs):
        if attrs["chunk_overlap"] >= attrs["chunk_size"]:
            raise serializers.ValidationError({"chunk_overlap": "must be smaller than chunk_size"})
        return attrs


def knowledge_base_info(base: KnowledgeBase) -> dict[str, Any]:
    """Langflow's ``KnowledgeBaseInfo``."""
    chunks = getattr(base, "chunk_count", 0)
    characters = getattr(base, "characters", 0)
    return {
        "id": str(base.pk), "dir_name": base.name, "name": base.name.replace("_", " "),
        "embedding_provider": base.embedding_provider, "embedding_model": base.embedding_model,
        "size": characters, "words": getattr(base, "word_count", 0), "characters": characters, "chunks": chunks,
        "avg_chunk_size": round(characters / chunks, 1) if chunks else 0.0,
        "chunk_size": None, "chunk_overlap": None, "separator": None,
        "status": "ready" if chunks else "empty", "failure_reason": None, "last_job_id": None, "source_types": [],
    }


class KnowledgeAPIView(APIView):
    parser_classes = [LimitedJSONParser]
    permission_classes = [IsAuthenticated, SharedDataKeyGrants]
    key_permissions = {"GET": READ, "POST": WRITE, "DELETE": WRITE}
    scoped_key_cannot_write = SCOPED_KEY_CANNOT_CHANGE

    def handle_exception(self, exc):
        if isinstance(exc, ValidationError):  # Langflow answers 400 for a bad name, 409 for a taken one
            if exc.code == "taken":
                exc = Conflict("; ".join(exc.messages))
            else:
                return Response({"detail": "; ".join(exc.messages)}, status=status.HTTP_400_BAD_REQUEST)
        return super().handle_exception(exc)

    def validated(self, serializer_class, data) -> dict:
        serializer = serializer_class(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def get_base(self, name: str) -> KnowledgeBase:
        base = services.find_knowledge_base(self.request.user.pk, name)
        if base is None:
            raise exceptions.NotFound(f"Knowledge base '{name}' not found")
        return base


class KnowledgeBaseListView(KnowledgeAPIView):
    """``GET``: the caller's knowledge bases; ``POST``: create one (201); ``DELETE``: several by name."""

    @extend_schema(operation_id="list_knowledge_bases", responses={200: OpenApiResponse(description="The bases.")})
    def get(self, request):
        return Response([knowledge_base_info(base) for base in services.owned_knowledge_bases(request.user.pk)])

    @extend_schema(operation_id="create_knowledge_base", request=CreateSerializer,
                   responses={201: OpenApiResponse(description="The new base."),
                              400: OpenApiResponse(ErrorSerializer, description="A bad name."),
                              409: OpenApiResponse(ErrorSerializer, description="The name is taken.")})
    def post(self, request):
        body = self.validated(CreateSerializer, request.data)
        base = services.create_knowledge_base(owner_id=request.user.pk, **body)
        return Response(knowledge_base_info(services.with_stats(KnowledgeBase.objects.filter(pk=base.pk)).get()),
                        status=status.HTTP_201_CREATED)

    @extend_schema(operation_id="delete_knowledge_bases", request=BulkDeleteSerializer,
                   responses={200: OpenApiResponse(description="How many were deleted."),
                              404: OpenApiResponse(ErrorSerializer, description="None of the names is a base of yours."),
                              422: OpenApiResponse(ErrorSerializer, description="No `kb_names` list in the body.")})
    def delete(self, request):
        names = self.validated(BulkDeleteSerializer, request.data)["kb_names"]
        deleted, missing = 0, []
        for name in names:
            base = services.find_knowledge_base(request.user.pk, name)
            if base is None:
                missing.append(name)
                continue
            services.delete_knowledge_base(base)
            deleted += 1
        if missing and not deleted:
            raise exceptions.NotFound(f"Knowledge bases not found: {', '.join(missing)}")
        answer: dict[str, Any] = {"message": f"Successfully deleted {deleted} knowledge base(s)",
                                  "deleted_count": deleted}
        if missing:
            answer["not_found"] = ", ".join(missing)
        return Response(answer)


@extend_schema_view(get=extend_schema(operation_id="list_knowledge_bases_slash"),
                    post=extend_schema(operation_id="create_knowledge_base_slash"),
                    delete=extend_schema(operation_id="delete_knowledge_bases_slash"))
class KnowledgeBaseListSlashView(KnowledgeBaseListView):
    """The same list at ``/api/v1/knowledge_bases/``, as Langflow's clients call it."""


class KnowledgeBaseDetailView(KnowledgeAPIView):
    """``GET``: one base; ``DELETE``: delete it and its chunks."""

    @extend_schema(operation_id="get_knowledge_base", responses={200: OpenApiResponse(description="The base.")})
    def get(self, request, kb_name):
        return Response(knowledge_base_info(self.get_base(kb_name)))

    @extend_schema(operation_id="delete_knowledge_base", responses={200: OpenApiResponse(description="Deleted.")})
    def delete(self, request, kb_name):
        base = self.get_base(kb_name)
        services.delete_knowledge_base(base)
        return Response({"message": f"Knowledge base '{base.name}' deleted successfully"})


class KnowledgeBaseChunksView(KnowledgeAPIView):
    """``GET ?page=&limit=&search=``: a page of the base's chunks (Langflow's PaginatedChunkResponse)."""

    @extend_schema(operation_id="list_knowledge_base_chunks", parameters=[ChunkQuerySerializer],
                   responses={200: OpenApiResponse(description="A page of chunks.")})
    def get(self, request, kb_name):
        query = self.validated(ChunkQuerySerializer, request.query_params)
        base = self.get_base(kb_name)
        chunks, total = services.chunk_page(base, page=query["page"], limit=query["limit"], text=query["search"])
        limit = query["limit"]
        return Response({
            "chunks": [{"id": str(chunk.pk), "content": chunk.text, "char_count": len(chunk.text),
                        "metadata": chunk.metadata} for chunk in chunks],
            "total": total, "page": query["page"], "limit": limit,
            "total_pages": (total + limit - 1) // limit if total else 0,
        })


# --- Ingestion ----------------------------------------------------------------------------------

def split_recursive(text: str, size: int, overlap: int, separators: tuple[str, ...] = SEPARATORS) -> list[str]:
    """LangChain's RecursiveCharacterTextSplitter, in short: cut at the first separator the text
    has, merge the pieces into chunks of at most ``size`` characters overlapping by up to
    ``overlap``, and cut a piece still too long at the next separator."""
    separator = next((sep for sep in separators if sep == "" or sep in text), "")
    rest = separators[separators.index(separator) + 1:] if separator in separators else ()
    chunks: list[str] = []
    fitting: list[str] = []
    for piece in pieces(text, separator, None):
        if len(piece) <= size or not rest:
            fitting.append(piece)
            continue
        chunks += merge(iter(fitting), separator, size, overlap)
        fitting = []
        chunks += split_recursive(piece, size, overlap, rest)
    chunks += merge(iter(fitting), separator, size, overlap)
    return chunks


class PendingIngestion(Response):
    """The sync half's answer: the chunks to embed and store, for the async half."""

    def __init__(self, view: KnowledgeBaseIngestView, name: str, texts: list[tuple[str, dict]],
                 file_names: list[str]):
        super().__init__(None)
        self.view, self.name, self.texts, self.file_names = view, name, texts, file_names


class KnowledgeBaseIngestView(KnowledgeAPIView):
    """``POST``: files (multipart, ``files``; and ``source_name``, ``chunk_size``, ``chunk_overlap``,
    ``separator``), or JSON ``{"text": ..., "source_name": ...}``, split, embedded and stored."""

    parser_classes = [LimitedMultiPartParser, LimitedJSONParser]

    @classmethod
    def as_view(cls, **initkwargs):
        sync_view = super().as_view(**initkwargs)

        async def view(request, *args, **kwargs):
            response = await dbthreads.run(sync_view, request, *args, **kwargs)
            if isinstance(response, PendingIngestion):
                response = await response.view.finish(response)
            return sent_as_rendered(response)

        return functools.update_wrapper(view, sync_view)

    @extend_schema(operation_id="ingest_knowledge_base", request={"multipart/form-data": IngestSerializer,
                                                                  "application/json": IngestSerializer},
                   responses={200: OpenApiResponse(description="files_processed, chunks_created, file_names"),
                              413: OpenApiResponse(ErrorSerializer, description="Past KNOWLEDGE_MAX_CHUNKS or "
                                                                                "the body's limit."),
                              502: OpenApiResponse(ErrorSerializer, description="The embeddings call failed.")})
    def post(self, request, kb_name):
        base = self.get_base(kb_name)
        options = self.validated(IngestSerializer, {key: request.data.get(key) for key in
                                                    ("text", "source_name", "chunk_size", "chunk_overlap", "separator")
                                                    if request.data.get(key) is not None})
        sources = [(upload.name or "unknown", upload.read()) for upload in request.FILES.getlist("files")]
        sources += [(upload.name or "unknown", upload.read()) for upload in request.FILES.getlist("file")]
        if options.get("text"):
            sources.append((options["source_name"] or "text", options["text"].encode()))
        if not sources:
            raise exceptions.ParseError("Nothing to ingest: send files as 'files' (multipart), or JSON {\"text\": ...}.")
        separator = options["separator"].replace("\\n", "\n").replace("\\t", "\t")
        separators = (separator, *SEPARATORS) if separator else SEPARATORS
        texts, names = [], []
        for name, content in sources:
            text = self.extract(name, content)
            chunks = [chunk for chunk in split_recursive(text, options["chunk_size"], options["chunk_overlap"],
                                                          separators) if chunk.strip()]
            if not chunks:
                continue
            names.append(name)
            texts += [(chunk, {"source": options["source_name"] or name, "file_name": name, "chunk_index": index,
                               "total_chunks": len(chunks)}) for index, chunk in enumerate(chunks)]
            if len(texts) > settings.KNOWLEDGE_MAX_CHUNKS:
                break  # refused by the ingestion, before any embedding
        if not names:
            raise exceptions.ParseError("No text could be read from what was sent.")
        return PendingIngestion(self, base.name, texts, names)

    def extract(self, name: str, content: bytes) -> str:
        stem, dot, extension = name.rpartition(".")
        extension = extension.lower() if dot and stem else "txt"
        if extension not in documents.SUPPORTED_EXTENSIONS:
            raise exceptions.ParseError(f"{name!r}: this server reads {', '.join(sorted(documents.SUPPORTED_EXTENSIONS))}")
        try:
            return documents.extract_text(extension, content, limit=settings.FLOW_MAX_VALUE_BYTES,
                                          deadline=time.monotonic() + settings.OPENAI_TIMEOUT,
                                          max_unpacked=4 * settings.FILES_MAX_PARSE_BYTES)
        except documents.DocumentError as error:
            raise exceptions.ParseError(f"{name!r} {error}") from None
        except ValueTooLarge:
            raise exceptions.ParseError(f"{name!r} holds more text than FLOW_MAX_VALUE_BYTES") from None
        except TimeoutError:
            raise exceptions.ParseError(f"{name!r} took too long to read") from None

    async def finish(self, pending: PendingIngestion):
        try:
            created = await ingest_texts(owner_id=self.request.user.pk, name=pending.name, texts=pending.texts)
        except KnowledgeBaseNotFound:
            response = Response({"detail": f"Knowledge base '{pending.name}' not found"}, status=404)
        except KnowledgeLimitReached as error:
            response = Response({"detail": str(error)}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        except embeddings.ModelCallFailed as error:
            logger.warning("Ingestion into a knowledge base failed: %s", error)
            response = Response({"detail": f"Embeddings failed: {error}"}, status=status.HTTP_502_BAD_GATEWAY)
        else:
            response = Response({
                "message": f"Successfully ingested {len(pending.file_names)} file(s) with {created} chunks into "
                           f"'{pending.name}'",
                "files_processed": len(pending.file_names), "chunks_created": created,
                "file_names": pending.file_names,
            })
        return self.finalize_response(self.request, response)  # rendered by as_view (sent_as_rendered)
