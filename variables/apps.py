from django.apps import AppConfig


class VariablesConfig(AppConfig):
    name = "variables"
    verbose_name = "Variables"
    default_auto_field = "django.db.models.BigAutoField"
