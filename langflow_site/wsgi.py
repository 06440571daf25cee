import os

from django.core.wsgi import get_wsgi_application

from langflow_site.datadir import prepare

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "langflow_site.settings")
prepare()  # DATA_DIR, its secrets and the SQLite file, before the settings read them

application = get_wsgi_application()

from langflow_site.startup import on_server_start  # noqa: E402  (needs Django set up)

on_server_start()
