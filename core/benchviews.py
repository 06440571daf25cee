"""The ceiling that `make bench` compares the run endpoint against: mounted only when BENCH_ENDPOINTS is on.

A bare DRF view, no authentication, one SQL query, the same JSON parsing and rendering: the
fastest an API request can be on this stack and machine.
"""

from django.contrib.auth import get_user_model
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView


class CeilingView(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    def post(self, request):
        body = request.data
        users = get_user_model().objects.filter(is_active=True).exists()
        return Response({"users": users, "input_value": body.get("input_value") if isinstance(body, dict) else None})
