"""One writer process for the SQLite concurrency test: read-then-write transactions on one row.

Usage: ``python -m tests.production.sqlite_writers MODE ITERATIONS START_AT KEY_NAME`` in the
site's environment; prints ``{"committed": n, "locked": n}`` as JSON. MODE is the SQLite
``transaction_mode`` to use: IMMEDIATE is the site's setting, with its backend (``core.sqlite``:
writers take turns, in a process and between processes); DEFERRED, with Django's own backend
and none of those turns, shows why.
"""

import json
import os
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "langflow_site.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.db import OperationalError, connections, transaction  # noqa: E402
from django.db.models import F  # noqa: E402
from django.utils import timezone  # noqa: E402

from apikeys.models import ApiKey  # noqa: E402


def main(mode: str, iterations: int, start_at: float, key_name: str) -> dict:
    settings.DATABASES["default"]["OPTIONS"]["transaction_mode"] = mode  # read when the connection opens
    if mode == "DEFERRED":
        connections["default"].close()
        settings.DATABASES["default"]["ENGINE"] = "django.db.backends.sqlite3"
        del connections["default"]  # made again at the next query, with Django's own backend
    key = ApiKey.objects.get(name=key_name)
    committed = locked = 0
    time.sleep(max(0.0, start_at - time.time()))  # every writer starts together
    for _ in range(iterations):
        try:
            with transaction.atomic():
                current = ApiKey.objects.get(pk=key.pk).total_uses  # a read first...
                time.sleep(0.002)  # ...some work...
                ApiKey.objects.filter(pk=key.pk).update(total_uses=F("total_uses") + 1)  # ...then the write
                key.user.__class__.objects.filter(pk=key.user_id).update(last_login=timezone.now())
            committed += 1
            assert current >= 0
        except OperationalError as exc:
            if "locked" not in str(exc):
                raise
            locked += 1
    return {"committed": committed, "locked": locked}


if __name__ == "__main__":
    mode, iterations, start_at, key_name = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    print(json.dumps(main(mode, iterations, start_at, key_name)))
