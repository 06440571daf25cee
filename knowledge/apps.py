from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    name = "knowledge"
    verbose_name = "Knowledge bases"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import vectors  # noqa: F401  (loads sqlite-vec into each new SQLite connection)
