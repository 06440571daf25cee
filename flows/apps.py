from django.apps import AppConfig
from django.conf import settings


class FlowsConfig(AppConfig):
    name = "flows"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from .engine.egress import parse_allowed_base_urls

        # Refuse to start on a malformed allow-list entry rather than at a flow's first run.
        parse_allowed_base_urls(tuple(settings.MODEL_ALLOWED_BASE_URLS))
