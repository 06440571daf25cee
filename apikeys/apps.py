from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

#: The settings holding a throttle rate ("20/min"; empty: no limit).
RATE_SETTINGS = ("API_KEY_FAILED_AUTH_RATE", "API_KEY_LEAK_REPORT_RATE", "API_KEY_RATE")


class ApiKeysConfig(AppConfig):
    name = "apikeys"
    verbose_name = "API keys"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_migrate, pre_delete

        from flows.models import Flow
        from flows.signals import deletion_notes

        from .rates import RATE_HELP, is_valid_rate

        # A malformed rate stops every process at start rather than failing its first request.
        for name in RATE_SETTINGS:
            value = getattr(settings, name)
            if value and not is_valid_rate(value):
                raise ImproperlyConfigured(f"{name}: {RATE_HELP}")

        from . import openapi  # noqa: F401  registers the x-api-key security schemes
        from .signals import forget_deleted_flow, note_keys_left_without_flows, reinstall_daily_usage_trigger

        post_migrate.connect(reinstall_daily_usage_trigger, sender=self)
        pre_delete.connect(forget_deleted_flow, sender=Flow, dispatch_uid="apikeys.forget_deleted_flow")
        deletion_notes.connect(note_keys_left_without_flows, sender=Flow, dispatch_uid="apikeys.deletion_notes")
