from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView

from apikeys.authentication import ApiKeyAuthentication, BearerApiKeyAuthentication
from core import views
from core.apidocs import ApiDocsView
from flows.mcp_api import McpView
from flows.responses_api import ResponsesView
from users.api import WhoAmIView

# The doors that OpenAI's and MCP's clients use take the key as a Bearer token too, and no session.
KEY_OR_BEARER = [ApiKeyAuthentication, BearerApiKeyAuthentication]

handler400 = "core.views.bad_request"
handler403 = "core.views.permission_denied"
handler404 = "core.views.page_not_found"
handler500 = "core.views.server_error"

urlpatterns = [
    # Django tries the patterns in order: the run endpoints, the hot path, come first (no other
    # route starts with api/v1/flows/, run/, process/ or monitor/).
    path("api/v1/", include("flows.api_urls")),
    path("health", views.health, name="health"),
    path("admin/", admin.site.urls),
    path("api/v1/users/whoami", WhoAmIView.as_view(), name="whoami"),
    path("api/v1/api_key/", include("apikeys.api_urls")),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="openapi-schema"),
    path("api/docs/", ApiDocsView.as_view(url_name="openapi-schema"), name="api-docs"),
    path("api/v1/variables/", include("variables.api_urls")),
    path("api/v1/responses", ResponsesView.as_view(authentication_classes=KEY_OR_BEARER), name="responses"),
    path("api/v1/mcp/", McpView.as_view(authentication_classes=KEY_OR_BEARER), name="mcp"),
    path("api/v1/", include("webhooks.api_urls")),
    path("api/v1/", include("flows.knowledge_api_urls")),
    path("api/v2/", include("files.api_urls")),
    # The browser UI (server-rendered pages).
    path("", RedirectView.as_view(pattern_name="flows:list"), name="home"),
    path("", include("users.urls")),
    path("api-keys/", include("apikeys.urls")),
    path("flows/", include("flows.urls")),
    path("variables/", include("variables.urls")),
]

if settings.BENCH_ENDPOINTS:  # `make bench` only: see core/benchviews.py
    from core.benchviews import CeilingView

    urlpatterns.append(path("api/v1/bench/ceiling", CeilingView.as_view(), name="bench-ceiling"))
