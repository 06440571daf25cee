"""The site's routes plus one view mounted twice: with our key authentication, and with HasAPIKey."""

from django.urls import path
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_api_key.permissions import HasAPIKey

from apikeys.authentication import ApiKeyAuthentication
from langflow_site.urls import urlpatterns as site_urlpatterns


class KeyedView(APIView):
    def get(self, request):
        return Response({"ok": True})


urlpatterns = [
    *site_urlpatterns,
    path(
        "bench/ours",
        KeyedView.as_view(authentication_classes=[ApiKeyAuthentication], permission_classes=[IsAuthenticated]),
    ),
    path("bench/theirs", KeyedView.as_view(authentication_classes=[], permission_classes=[HasAPIKey])),
]
