"""The key-management REST API: Langflow's routes, plus rotation and leak reports.

Keys are managed with a signed-in session (and its CSRF token) only: an API key, even a
valid one, is refused here, so a leaked key cannot mint, list or delete keys.
"""

import datetime

from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from core.net import client_ip
from core.parsers import JSONBodyParser

from . import serializers
from .access import KeyAccess
from .models import ApiKey
from .services import (
    KeyNotActive,
    change_key_access,
    create_api_key,
    report_leaked_key,
    revoke_api_key,
    rotate_api_key,
)
from .throttling import LeakReportThrottle

API_KEY_REFUSED_MESSAGE = "API keys cannot manage API keys; sign in to manage them."
SIGN_IN_MESSAGE = "Sign in to manage API keys."
NOT_FOUND_MESSAGE = "API key not found"
DELETED_MESSAGE = "API Key deleted"
LEAK_REPORT_MESSAGE = (
    "Thank you. If this key was active, it has been revoked and its owner will see it reported as leaked."
)
# An OpenAPI security requirement: drf-spectacular puts extend_schema's ``auth`` in the operation as
# it is, though its annotation says Sequence[str]; hence the ignores where it is passed.
SESSION_ONLY: list[dict[str, list[str]]] = [{"cookieAuth": []}]
KEY_NOT_ACTIVE = {409: OpenApiResponse(serializers.DetailSerializer, description="The key is revoked or expired.")}


class KeyConflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This key cannot be changed."


class IsSignedInPerson(BasePermission):
    """A session user; never a request authenticated by an API key."""

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated) and not isinstance(request.auth, ApiKey)


class KeyManagementView(APIView):
    parser_classes = [JSONBodyParser]
    permission_classes = [IsSignedInPerson]

    def permission_denied(self, request, message=None, code=None):
        # Say what would work: a session, not (another) key.
        if isinstance(request.auth, ApiKey):
            raise exceptions.PermissionDenied(API_KEY_REFUSED_MESSAGE)
        raise exceptions.PermissionDenied(SIGN_IN_MESSAGE)

    def handle_exception(self, exc):
        if isinstance(exc, KeyNotActive):  # a revoked or expired key cannot change
            exc = KeyConflict(str(exc))
        return super().handle_exception(exc)

    def get_owned_key(self, key_id) -> ApiKey:
        """Return the caller's key; another user's answers exactly like a missing one."""
        api_key = ApiKey.objects.owned_by(self.request.user).select_related("user").filter(pk=key_id).first()
        if api_key is None:
            raise Http404(NOT_FOUND_MESSAGE)
        return api_key


def _created_response(api_key: ApiKey, raw_key: str) -> Response:
    data = serializers.ApiKeyCreatedSerializer(api_key, context={"raw_key": raw_key}).data
    response = Response(data, status=status.HTTP_200_OK)
    response["Cache-Control"] = "no-store"
    return response


class ApiKeyListCreateView(KeyManagementView):
    @extend_schema(
        operation_id="list_api_keys", auth=SESSION_ONLY,  # type: ignore[arg-type]
        responses=serializers.ApiKeyListSerializer, summary="List your API keys (masked).",
    )
    def get(self, request):
        keys = list(ApiKey.objects.owned_by(request.user))
        data = {"total_count": len(keys), "user_id": request.user.pk, "api_keys": keys}
        return Response(serializers.ApiKeyListSerializer(data).data)

    @extend_schema(
        operation_id="create_api_key", auth=SESSION_ONLY,  # type: ignore[arg-type]
        request=serializers.ApiKeyCreateSerializer,
        responses={200: serializers.ApiKeyCreatedSerializer},
        summary="Create an API key; the full key is in this response only.",
    )
    def post(self, request):
        form = serializers.ApiKeyCreateSerializer(data=request.data, context={"user": request.user})
        form.is_valid(raise_exception=True)
        api_key, raw_key = create_api_key(user=request.user, client_ip=client_ip(request), **form.validated_data)
        return _created_response(api_key, raw_key)


class ApiKeyDetailView(KeyManagementView):
    @extend_schema(
        operation_id="get_api_key", auth=SESSION_ONLY,  # type: ignore[arg-type]
        responses=serializers.ApiKeySerializer, summary="Show one of your API keys (masked).",
    )
    def get(self, request, key_id):
        return Response(serializers.ApiKeySerializer(self.get_owned_key(key_id)).data)

    @extend_schema(
        operation_id="update_api_key_access", auth=SESSION_ONLY,  # type: ignore[arg-type]
        request=serializers.ApiKeyAccessSerializer,
        responses={
            200: serializers.ApiKeySerializer,
            **KEY_NOT_ACTIVE,
        },
        summary="Change which flows a key may use, what it may do and where from (each change is audited).",
    )
    def patch(self, request, key_id):
        api_key = self.get_owned_key(key_id)
        form = serializers.ApiKeyAccessSerializer(
            data=request.data, context={"user": request.user, "current": KeyAccess.of(api_key)}
        )
        form.is_valid(raise_exception=True)
        change_key_access(api_key, form.validated_data["access"], actor_user=request.user,
                          client_ip=client_ip(request))
        return Response(serializers.ApiKeySerializer(api_key).data)

    @extend_schema(
        operation_id="delete_api_key", auth=SESSION_ONLY,  # type: ignore[arg-type]
        responses={200: serializers.DetailSerializer},
        summary="Revoke an API key at once (kept, revoked, in your list and audit log).",
    )
    def delete(self, request, key_id):
        api_key = self.get_owned_key(key_id)
        revoke_api_key(api_key, revoked_by=ApiKey.RevokedBy.OWNER, actor_user=request.user,
                       client_ip=client_ip(request))
        return Response({"detail": DELETED_MESSAGE})


class ApiKeyRotateView(KeyManagementView):
    @extend_schema(
        operation_id="rotate_api_key", auth=SESSION_ONLY,  # type: ignore[arg-type]
        request=serializers.ApiKeyRotateSerializer,
        responses={
            200: serializers.ApiKeyCreatedSerializer,
            **KEY_NOT_ACTIVE,
        },
        summary="Give a key a new secret (shown once); the old one stops now or after a grace period.",
    )
    def post(self, request, key_id):
        api_key = self.get_owned_key(key_id)
        form = serializers.ApiKeyRotateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        grace = datetime.timedelta(hours=form.validated_data["grace_period_hours"])
        api_key, raw_key = rotate_api_key(api_key, grace=grace, actor_user=request.user, client_ip=client_ip(request))
        return _created_response(api_key, raw_key)


class LeakReportView(APIView):
    """Anyone who finds a key (a scanner, a stranger) can have it revoked, with no sign-in."""

    authentication_classes = []
    parser_classes = [JSONBodyParser]
    permission_classes = [AllowAny]
    throttle_classes = [LeakReportThrottle]

    @extend_schema(
        operation_id="report_leaked_api_key", auth=[], request=serializers.LeakReportSerializer,
        responses={200: serializers.DetailSerializer},
        summary="Report a leaked key: it is revoked at once. The answer never says whether it existed.",
    )
    def post(self, request):
        form = serializers.LeakReportSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        report_leaked_key(form.validated_data["api_key"], client_ip=client_ip(request))
        return Response({"detail": LEAK_REPORT_MESSAGE})
