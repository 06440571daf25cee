"""Settings for the in-process key benchmarks (bench/auth_costs.py): the site's own, plus

* djangorestframework-api-key, the comparison of benchmark 4;
* a second SQLite database, "large", so 10 keys and 1,000,000 keys are timed side by side;
* no failed-authentication throttle, so every refused key takes the full refusal path
  (lookup, hashing, audit line) instead of the cheaper "too many failures" answer.

DATA_DIR must point at a temporary folder before this module is imported.
"""

from langflow_site.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "rest_framework_api_key"]  # noqa: F405
ROOT_URLCONF = "bench.urls"
DATABASES["large"] = {  # noqa: F405
    **DATABASES["default"],  # noqa: F405
    "NAME": str(DATA_DIR / "large.sqlite3"),  # noqa: F405
}
DATABASE_ROUTERS = ["bench.databases.SelectedDatabase"]
API_KEY_FAILED_AUTH_RATE = None
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "ERROR"}}
