from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class FlowsConfig(AppConfig):
    name = "flows"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from .engine.egress import Refused, parse_allowed_base_urls
        from .engine.http import ALLOW_SETTING, parse_url

        # Refuse to start on a malformed allow-list entry rather than at a flow's first run.
        parse_allowed_base_urls(tuple(settings.MODEL_ALLOWED_BASE_URLS))
        parse_allowed_base_urls(tuple(settings.URL_ALLOWED_PREFIXES), ALLOW_SETTING)
        if settings.WEB_SEARCH_URL:
            try:
                parse_url(settings.WEB_SEARCH_URL)
            except Refused as refusal:
                raise ImproperlyConfigured(f"WEB_SEARCH_URL {refusal}") from None
