from django.apps import AppConfig


class SiteConfig(AppConfig):
    """The project package as an app, so its deploy checks are registered."""

    name = "langflow_site"
    verbose_name = "Site"

    def ready(self):
        from . import checks  # noqa: F401  (registers the checks)
        from .errors import install_lazy_query_parsing

        install_lazy_query_parsing()
