"""Langflow's ``/api/v1/monitor/messages`` routes: list, change and delete stored chat messages.

Owner-scoped as every flows route: a request sees the messages of the flows it may use
(``Message.objects.visible_to``), another user's are missing (a change answers 404, a delete
touches nothing, a list leaves them out). An API key needs ``read`` to list and ``write`` to
change or delete (``ApiKeyGrants``), and a key limited to chosen flows reaches only their
messages. Every answer is bounded: pages of at most MAX_PAGE rows, whose texts together stay
within FLOW_MAX_ANSWER_BYTES (measured in the database before any is read).
"""

from __future__ import annotations

import datetime
import json
import uuid

from django.conf import settings
from django.db.models import Sum
from django.db.models.functions import Length
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from core.openapi import ErrorSerializer

from .api import FlowAPIView
from .engine.limits import LimitExceeded, text_size
from .memory import langflow_timestamp
from .models import FlowPermission, Message

MAX_PAGE = 1000
# At most this many ids or sessions in one delete (Langflow refuses more than 500 sessions).
MAX_DELETE = 500
ORDER_FIELDS = ("timestamp", "sender", "sender_name", "session_id", "text")
MESSAGE_NOT_FOUND = "Message not found"


def _utc(moment: datetime.datetime) -> datetime.datetime:
    return moment.astimezone(datetime.UTC)


def message_response(row: Message) -> dict:
    """Langflow's ``MessageResponse``: what the list routes answer (``files`` as a JSON text, as there)."""
    return {
        "id": str(row.pk), "flow_id": str(row.flow_id), "timestamp": _utc(row.timestamp).strftime("%Y-%m-%d %H:%M:%S"),
        "sender": row.sender, "sender_name": row.sender_name, "session_id": row.session_id, "context_id": None,
        "text": row.text, "files": json.dumps(row.files), "edit": row.edit, "duration": None,
        "properties": row.properties, "category": row.category, "content_blocks": row.content_blocks,
    }


def message_read(row: Message) -> dict:
    """Langflow's ``MessageRead``: what a change answers."""
    return {
        "id": str(row.pk), "flow_id": str(row.flow_id), "timestamp": langflow_timestamp(row.timestamp),
        "sender": row.sender, "sender_name": row.sender_name, "session_id": row.session_id, "text": row.text,
        "files": row.files, "error": row.error, "edit": row.edit, "properties": row.properties,
        "category": row.category, "content_blocks": row.content_blocks,
    }


def refuse_oversized_page(page_ids) -> None:
    """Refuse a page (a query of its ids) whose texts add up to more than FLOW_MAX_ANSWER_BYTES,
    measured in the database (as characters) before any text is read."""
    limit = settings.FLOW_MAX_ANSWER_BYTES
    total = Message.objects.filter(pk__in=page_ids).aggregate(total=Sum(Length("text")))["total"] or 0
    if total > limit:
        raise LimitExceeded(f"These messages' texts add up to more than FLOW_MAX_ANSWER_BYTES ({limit:,} bytes): "
                            "ask for fewer at a time (limit, offset).")


# --- Serializers ------------------------------------------------------------------------------

class PageQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(required=False, default=MAX_PAGE, min_value=1, max_value=MAX_PAGE)
    offset = serializers.IntegerField(required=False, default=0, min_value=0, max_value=1_000_000_000)


class MessageListQuerySerializer(PageQuerySerializer):
    flow_id = serializers.UUIDField(required=False, allow_null=True)
    session_id = serializers.CharField(required=False, allow_blank=True, max_length=255)
    sender = serializers.CharField(required=False, allow_blank=True, max_length=255)
    sender_name = serializers.CharField(required=False, allow_blank=True, max_length=255)
    order_by = serializers.ChoiceField(choices=ORDER_FIELDS, required=False, default="timestamp")


class SessionListQuerySerializer(PageQuerySerializer):
    flow_id = serializers.UUIDField(required=False, allow_null=True)


class MessageResponseSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    flow_id = serializers.UUIDField()
    timestamp = serializers.CharField()
    sender = serializers.CharField()
    sender_name = serializers.CharField()
    session_id = serializers.CharField()
    context_id = serializers.CharField(allow_null=True)
    text = serializers.CharField(allow_blank=True)
    files = serializers.CharField(help_text="The files' paths as a JSON list, as Langflow writes them.")
    edit = serializers.BooleanField()
    duration = serializers.FloatField(allow_null=True)
    properties = serializers.DictField()
    category = serializers.CharField()
    content_blocks = serializers.ListField()


class MessageReadSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    flow_id = serializers.UUIDField()
    timestamp = serializers.CharField()
    sender = serializers.CharField()
    sender_name = serializers.CharField()
    session_id = serializers.CharField()
    text = serializers.CharField(allow_blank=True)
    files = serializers.ListField(child=serializers.CharField())
    error = serializers.BooleanField()
    edit = serializers.BooleanField()
    properties = serializers.DictField()
    category = serializers.CharField()
    content_blocks = serializers.ListField()


class MessageUpdateSerializer(serializers.Serializer):
    """Langflow's ``MessageUpdate``: every field optional, a null one left as it is."""

    text = serializers.CharField(required=False, allow_null=True, allow_blank=True, trim_whitespace=False)
    sender = serializers.CharField(required=False, allow_null=True, max_length=255)
    sender_name = serializers.CharField(required=False, allow_null=True, max_length=255)
    session_id = serializers.CharField(required=False, allow_null=True, max_length=255)
    files = serializers.ListField(child=serializers.CharField(max_length=1024), required=False, allow_null=True,
                                  max_length=100)
    edit = serializers.BooleanField(required=False, allow_null=True)
    error = serializers.BooleanField(required=False, allow_null=True)
    properties = serializers.DictField(required=False, allow_null=True)

    def validate_text(self, value):
        if value is not None and text_size(value) > settings.FLOW_MAX_VALUE_BYTES:
            raise serializers.ValidationError(
                f"is longer than FLOW_MAX_VALUE_BYTES ({settings.FLOW_MAX_VALUE_BYTES:,} bytes)")
        return value


class DeletedSessionsSerializer(serializers.Serializer):
    message = serializers.CharField()
    deleted_count = serializers.IntegerField()


def _id_list(data, what: str, *, uuids: bool) -> list:
    """The body of a delete: a JSON list of ids (UUIDs) or session ids, at most MAX_DELETE."""
    if not isinstance(data, list):
        raise exceptions.ValidationError({"detail": f"The body must be a JSON list of {what}."})
    if len(data) > MAX_DELETE:
        raise exceptions.ValidationError({"detail": f"At most {MAX_DELETE} {what} at a time."})
    values = []
    for item in data:
        if not isinstance(item, str) or not item or len(item) > 255:
            raise exceptions.ValidationError({"detail": f"The body must be a JSON list of {what}."})
        if uuids:
            try:
                item = uuid.UUID(item)
            except ValueError:
                raise exceptions.ValidationError({"detail": f"{item[:40]!r} is not a message id."}) from None
        values.append(item)
    return values


# --- Views ------------------------------------------------------------------------------------

class MonitorView(FlowAPIView):
    """The messages a request may use: reading needs ``read``, changing ``write``."""

    key_permissions = {"GET": FlowPermission.READ, "PUT": FlowPermission.WRITE, "PATCH": FlowPermission.WRITE,
                       "DELETE": FlowPermission.WRITE}

    def messages(self, permission: str):
        return Message.objects.visible_to(self.request.user, self.request.auth, permission)


class MessageListView(MonitorView):
    """``GET /api/v1/monitor/messages``: a bare list, oldest first (``order_by``), in pages
    (``limit``, ``offset``); ``DELETE`` with a JSON list of ids deletes those of them you may use."""

    @extend_schema(operation_id="list_messages", parameters=[MessageListQuerySerializer],
                   responses={200: MessageResponseSerializer(many=True),
                              422: OpenApiResponse(ErrorSerializer, description="Bad parameters, or texts adding up "
                                                   "past FLOW_MAX_ANSWER_BYTES (ask for a smaller page).")})
    def get(self, request):
        query = self.validated(MessageListQuerySerializer, request.query_params)
        messages = self.messages(FlowPermission.READ)
        if query.get("flow_id"):
            messages = messages.filter(flow_id=query["flow_id"])
        for field in ("session_id", "sender", "sender_name"):
            if query.get(field):
                messages = messages.filter(**{field: query[field]})
        order = query["order_by"]
        ordered = messages.order_by(order, *(name for name in ("timestamp", "id") if name != order))
        window = slice(query["offset"], query["offset"] + query["limit"])
        refuse_oversized_page(ordered.values("pk")[window])
        return Response([message_response(row) for row in ordered[window]])

    @extend_schema(operation_id="delete_messages", request={"application/json": {"type": "array",
                                                            "items": {"type": "string", "format": "uuid"}}},
                   responses={204: None, 422: OpenApiResponse(ErrorSerializer, description="Not a list of ids.")})
    def delete(self, request):
        ids = _id_list(request.data, "message ids", uuids=True)
        self.messages(FlowPermission.WRITE).filter(pk__in=ids).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class SessionListView(MonitorView):
    """``GET /api/v1/monitor/messages/sessions``: the session ids of your messages (of ``flow_id``),
    sorted, in pages; ``DELETE`` with a JSON list of session ids deletes their messages."""

    @extend_schema(operation_id="list_message_sessions", parameters=[SessionListQuerySerializer],
                   responses={200: {"type": "array", "items": {"type": "string"}}})
    def get(self, request):
        query = self.validated(SessionListQuerySerializer, request.query_params)
        messages = self.messages(FlowPermission.READ)
        if query.get("flow_id"):
            messages = messages.filter(flow_id=query["flow_id"])
        sessions = messages.order_by("session_id").values_list("session_id", flat=True).distinct()
        return Response(list(sessions[query["offset"]:query["offset"] + query["limit"]]))

    @extend_schema(operation_id="delete_message_sessions",
                   request={"application/json": {"type": "array", "items": {"type": "string"}}},
                   responses={200: DeletedSessionsSerializer,
                              422: OpenApiResponse(ErrorSerializer, description="Not a list of session ids.")})
    def delete(self, request):
        sessions = _id_list(request.data, "session ids", uuids=False)
        messages = self.messages(FlowPermission.WRITE).filter(session_id__in=sessions)
        count = len(set(messages.values_list("session_id", flat=True).distinct()))
        if not count:
            return Response({"message": "No sessions to delete", "deleted_count": 0})
        messages.delete()
        return Response({"message": f"Messages deleted successfully for {count} session{'s' if count != 1 else ''}",
                         "deleted_count": count})


class MessageDetailView(MonitorView):
    """``PUT /api/v1/monitor/messages/<id>``: change a message (a changed text marks it edited)."""

    @extend_schema(operation_id="update_message", request=MessageUpdateSerializer,
                   responses={200: MessageReadSerializer,
                              404: OpenApiResponse(ErrorSerializer, description="Message not found.")})
    def put(self, request, message_id):
        try:
            message_uuid = uuid.UUID(str(message_id))
        except ValueError:
            raise exceptions.NotFound(MESSAGE_NOT_FOUND) from None
        changes = {name: value for name, value in self.validated(MessageUpdateSerializer, request.data).items()
                   if value is not None}
        row = self.messages(FlowPermission.WRITE).filter(pk=message_uuid).first()
        if row is None:
            raise exceptions.NotFound(MESSAGE_NOT_FOUND)
        if "text" in changes and changes["text"] != row.text:
            changes["edit"] = True
        for name, value in changes.items():
            setattr(row, name, value)
        if changes:
            row.save(update_fields=list(changes))
        return Response(message_read(row))


class SessionDetailView(MonitorView):
    """``DELETE /api/v1/monitor/messages/session/<session_id>``: delete that session's messages (204)."""

    @extend_schema(operation_id="delete_message_session", responses={204: None})
    def delete(self, request, session_id):
        self.messages(FlowPermission.WRITE).filter(session_id=session_id).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

