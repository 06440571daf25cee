"""Deploy checks for running several app servers against one database (`manage.py check --deploy`).

Scaling out is configuration, so a wrong configuration is the failure to catch: each server
would otherwise generate its own secret and pepper in its own DATA_DIR, and every key made on
one server would be refused by the others.
"""

import os

from django.conf import settings
from django.core.checks import Tags, Warning, register


def _database_is_shared() -> bool:
    return settings.DATABASES["default"]["ENGINE"] not in ("django.db.backends.sqlite3", "core.sqlite")


@register(Tags.security, deploy=True)
def check_shared_configuration(app_configs=None, **kwargs):
    if not _database_is_shared():
        return []
    problems = [
        (
            not os.environ.get("SECRET_KEY"),
            "SECRET_KEY is generated into DATA_DIR, so each app server has its own.",
            "Set SECRET_KEY in the environment of every app server sharing this database.",
            "langflow_site.W001",
        ),
        (
            not os.environ.get("API_KEY_PEPPERS"),
            "The API-key pepper is generated into DATA_DIR: keys made on one app server would fail on the others.",
            "Set API_KEY_PEPPERS (e.g. 1:<long random secret>) on every app server sharing this database.",
            "langflow_site.W002",
        ),
        (
            str(settings.CACHES["default"]["BACKEND"]).endswith("LocMemCache"),
            "The cache lives in each process: throttles and cached values are not shared between servers.",
            "Set CACHE_URL=redis://<host>:6379/1.",
            "langflow_site.W003",
        ),
    ]
    return [Warning(message, hint=hint, id=check_id) for failing, message, hint, check_id in problems if failing]
