from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class UsersConfig(AppConfig):
    name = "users"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_migrate

        from core.cache import create_cache_tables

        # The throttles' default cache is a table: `migrate` creates it (once per run, with this app).
        post_migrate.connect(create_cache_tables, sender=self)


class SiteAdminConfig(admin_apps.AdminConfig):
    """``django.contrib.admin`` with ``users.admin_site.SiteAdmin`` as its site (sign-in throttled)."""

    default = False  # not the users app's own config
    default_site = "users.admin_site.SiteAdmin"
