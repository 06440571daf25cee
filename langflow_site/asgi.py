import gc
import os

import django
from django.conf import settings
from django.core import signals
from django.db import close_old_connections, reset_queries
from django.urls import get_resolver

from langflow_site.datadir import prepare

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "langflow_site.settings")
prepare()  # DATA_DIR, its secrets and the SQLite file, before the settings read them
django.setup(set_prefix=False)

from core.asgi import ReusedThreadsASGIHandler  # noqa: E402  (needs the apps loaded)
from core.middleware import for_asgi  # noqa: E402

# Django's middleware, served by twins that run their hooks on the event loop (see the module).
settings.MIDDLEWARE = for_asgi(settings.MIDDLEWARE)

# Django's handler, each request's sync code on a thread reused from earlier requests (core.asgi).
application = ReusedThreadsASGIHandler()

# Under ASGI, Django gives each request a thread of its own for its sync code. These two
# receivers of request_started would hop to it at the start of every request, async runs
# included, only to find it clean: request_finished closed, on that thread, whatever the
# previous request there had opened (and a thread whose request was cut short is not reused).
# So they are dropped here (a hop saved per request).
signals.request_started.disconnect(reset_queries)
signals.request_started.disconnect(close_old_connections)

from langflow_site.startup import on_server_start  # noqa: E402  (needs Django set up)

on_server_start()

# Every view imported now rather than at the first request; then what the process holds from
# its start (modules, settings, URL patterns: nearly all its objects) is moved out of the
# garbage collector's reach: each full collection walked all of it again, and a busy worker
# allocates enough to run them often. Now a collection walks only what requests made since.
get_resolver().url_patterns  # noqa: B018  (the URLconf's imports)
gc.collect()
gc.freeze()
