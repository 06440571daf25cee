import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "langflow_site.settings")

application = get_asgi_application()

from langflow_site.startup import on_server_start  # noqa: E402  (needs Django set up)

on_server_start()
