"""Langflow's ``/api/v1/variables/`` API: list, create, update and delete the caller's variables.

A signed-in session may do everything. An API key needs the ``write`` permission and access
to all its owner's flows (variables serve every flow of their owner, so a key limited to some
of them, or one that may only run or read, must not read or change them). A Credential's value
is never answered: ``value`` is null. Another user's variable is a 404 like a missing one.
"""

from __future__ import annotations

import logging
import uuid

from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import KeyGrants
from core.openapi import ErrorSerializer

from . import services
from .crypto import UndecryptableValue
from .models import Variable
from .serializers import VariableCreateSerializer, VariableReadSerializer, VariableUpdateSerializer

logger = logging.getLogger("variables.api")

WRITE = "write"
SCOPED_KEY_REFUSED = ("This API key is limited to chosen flows: it cannot manage variables, "
                      "which all of its owner's flows use.")


class VariableKeyGrants(KeyGrants):
    """``core.api.KeyGrants``; a key limited to chosen flows may not manage variables at all."""

    def scoped_refusal(self, view, api_key, method, needed):
        return None if getattr(api_key, "all_flows", False) else SCOPED_KEY_REFUSED


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT


class VariableAPIView(APIView):
    permission_classes = [IsAuthenticated, VariableKeyGrants]
    # Every method, reading included, needs ``write``: a variable holds the owner's secrets.
    key_permissions = dict.fromkeys(("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"), WRITE)

    def handle_exception(self, exc):
        if isinstance(exc, ValidationError):  # Langflow answers 400 for a bad or taken name
            return Response({"detail": "; ".join(exc.messages)}, status=status.HTTP_400_BAD_REQUEST)
        if isinstance(exc, UndecryptableValue):
            logger.error("Variable %r of user %s cannot be decrypted (key version %s)",
                         exc.name, self.request.user.pk, exc.version)
            exc = Conflict(f"{exc} To rename it or change its type, send a new value too.")
        return super().handle_exception(exc)

    def get_variable(self, variable_id) -> Variable:
        try:
            variable_uuid = uuid.UUID(str(variable_id))
        except ValueError:
            raise exceptions.NotFound(services.VARIABLE_NOT_FOUND) from None
        variable = Variable.objects.owned_by(self.request.user).filter(pk=variable_uuid).first()
        if variable is None:
            raise exceptions.NotFound(services.VARIABLE_NOT_FOUND)
        return variable


BAD_INPUT = {400: OpenApiResponse(ErrorSerializer, description="An empty or taken name, an empty value, a bad type.")}


class VariableListView(VariableAPIView):
    """``GET``: the caller's variables; ``POST``: create one (201)."""

    @extend_schema(operation_id="list_variables", responses=VariableReadSerializer(many=True))
    def get(self, request):
        return Response(VariableReadSerializer(Variable.objects.owned_by(request.user), many=True).data)

    @extend_schema(operation_id="create_variable", request=VariableCreateSerializer,
                   responses={201: VariableReadSerializer, **BAD_INPUT})
    def post(self, request):
        serializer = VariableCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = serializer.validated_data
        if not fields.get("name") and not fields.get("value"):
            raise ValidationError("Variable name and value cannot be empty")
        variable = services.create_variable(
            owner=request.user, name=fields.get("name", ""), value=fields.get("value", ""),
            type=fields.get("type") or "Credential", default_fields=fields.get("default_fields"),
        )
        return Response(VariableReadSerializer(variable).data, status=status.HTTP_201_CREATED)


class VariableDetailView(VariableAPIView):
    """``PATCH``: change a variable (only the fields sent); ``DELETE``: delete it (204)."""

    @extend_schema(operation_id="update_variable", request=VariableUpdateSerializer,
                   responses={200: VariableReadSerializer, **BAD_INPUT,
                              409: OpenApiResponse(ErrorSerializer, description="A Credential whose key is "
                                                   "gone cannot be renamed or retyped without a new value.")})
    def patch(self, request, variable_id):
        variable = self.get_variable(variable_id)
        serializer = VariableUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = serializer.validated_data
        if fields.get("id") is not None and fields["id"] != variable.pk:
            raise ValidationError("The id in the body is not the variable's.")
        variable = services.update_variable(
            variable, name=fields.get("name"), value=fields.get("value"), type=fields.get("type"),
            default_fields=fields.get("default_fields"),
        )
        return Response(VariableReadSerializer(variable).data)

    @extend_schema(operation_id="delete_variable", responses={204: None})
    def delete(self, request, variable_id):
        services.delete_variable(self.get_variable(variable_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
