from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class CoreConfig(AppConfig):
    """The shared foundations as an app, so its deploy checks are registered."""

    name = "core"
    verbose_name = "Core"

    def ready(self):
        from . import checks  # noqa: F401  (registers the checks)
        from .errors import install_lazy_query_parsing
        from .net import parse_proxies

        try:  # a malformed entry stops every process at start
            parse_proxies(settings.TRUSTED_PROXIES)
        except ValueError as error:
            raise ImproperlyConfigured(f"TRUSTED_PROXIES: {error}") from None

        install_lazy_query_parsing()
