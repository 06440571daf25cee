"""Deploy checks for running several app servers against one database (`manage.py check --deploy`).

Scaling out is configuration, so a wrong configuration is the failure to catch: each server
would otherwise generate its own secret and pepper in its own DATA_DIR, and every key made on
one server would be refused by the others.
"""

import os

from django.conf import settings
from django.core.checks import Tags, Warning, register


def _database_is_shared() -> bool:
    return settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3"


@register(Tags.security, deploy=True)
def check_shared_configuration(app_configs=None, **kwargs):
    if not _database_is_shared():
        return []
    warnings = []
    if not os.environ.get("SECRET_KEY"):
        warnings.append(
            Warning(
                "SECRET_KEY is generated into DATA_DIR, so each app server has its own.",
                hint="Set SECRET_KEY in the environment of every app server sharing this database.",
                id="langflow_site.W001",
            )
        )
    if not os.environ.get("API_KEY_PEPPERS"):
        warnings.append(
            Warning(
                "The API-key pepper is generated into DATA_DIR: keys made on one app server would fail on the others.",
                hint="Set API_KEY_PEPPERS (e.g. 1:<long random secret>) on every app server sharing this database.",
                id="langflow_site.W002",
            )
        )
    if settings.CACHES["default"]["BACKEND"].endswith("LocMemCache"):
        warnings.append(
            Warning(
                "The cache lives in each process: throttles and cached values are not shared between servers.",
                hint="Set CACHE_URL=redis://<host>:6379/1.",
                id="langflow_site.W003",
            )
        )
    return warnings
