from rest_framework.response import Response
from rest_framework.views import APIView


class WhoAmIView(APIView):
    """Tell a client who its key (or session) acts as."""

    def get(self, request):
        user = request.user
        return Response({"id": str(user.pk), "username": user.username, "is_superuser": user.is_superuser})
