from django.apps import AppConfig


class ApiKeysConfig(AppConfig):
    name = "apikeys"
    verbose_name = "API keys"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_migrate

        from . import openapi  # noqa: F401  registers the x-api-key security schemes
        from .signals import reinstall_daily_usage_trigger

        post_migrate.connect(reinstall_daily_usage_trigger, sender=self)
