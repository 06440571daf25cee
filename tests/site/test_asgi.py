"""The site as ASGI serves it: every middleware async-capable and in place, pages and runs through
Django's ASGI handler (AsyncClient), with sessions, CSRF and messages working."""

import re

import pytest
from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.test import AsyncClient
from django.utils.deprecation import MiddlewareMixin
from django.utils.module_loading import import_string

from core import middleware as site_middleware

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(autouse=True)
def served_as_asgi_serves(settings):
    """The middleware as langflow_site/asgi.py serves them."""
    settings.MIDDLEWARE = site_middleware.for_asgi(settings.MIDDLEWARE)


def test_every_middleware_is_async_capable_and_runs_its_hooks_in_place():
    """A sync-only middleware would put every request, run views included, on a thread; a plain
    MiddlewareMixin with request or response hooks would hop to a thread for each of them."""
    for path in settings.MIDDLEWARE:
        middleware = import_string(path)
        assert getattr(middleware, "async_capable", False), path
        if issubclass(middleware, MiddlewareMixin):
            has_hooks = any(hasattr(middleware, hook) for hook in ("process_request", "process_response"))
            assert not has_hooks or issubclass(middleware, site_middleware.InPlaceHooks), path


def test_the_asgi_application_serves_the_in_place_twins(tmp_path):
    """In its own process: importing langflow_site.asgi sets the middleware it serves."""
    import json
    import os
    import subprocess
    import sys

    code = ("import json; from django.conf import settings; import langflow_site.asgi; "
            "print(json.dumps(settings.MIDDLEWARE))")
    env = {**os.environ, "DATA_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
           "DJANGO_SETTINGS_MODULE": "langflow_site.settings"}
    result = subprocess.run([sys.executable, "-c", code], cwd=settings.BASE_DIR, env=env, capture_output=True,
                            text=True, timeout=60)
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert "core.middleware.CsrfViewMiddleware" in served
    assert not any(path in served for path in site_middleware.IN_PLACE)


def test_the_in_place_middleware_is_a_coroutine_under_asgi():
    async def inner(request):
        return None

    for path in settings.MIDDLEWARE:
        assert iscoroutinefunction(import_string(path)(inner)), path


async def sign_in(client: AsyncClient, username: str, password: str):
    page = await client.get("/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    return await client.post("/login/", {"username": username, "password": password, "csrfmiddlewaretoken": token})


@pytest.mark.anyio
async def test_sign_in_create_a_key_and_see_it_once_through_asgi(user):
    client = AsyncClient(enforce_csrf_checks=True)
    signed_in = await sign_in(client, "alice", "alice-password-1")
    assert signed_in.status_code == 302
    page = await client.get("/api-keys/")
    assert page.status_code == 200 and "Create new secret key" in page.content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    created = await client.post("/api-keys/new/", {"name": "asgi key", "csrfmiddlewaretoken": token}, follow=True)
    assert created.status_code == 200
    assert re.search(r"lfsk_[A-Za-z0-9]{12}_[A-Za-z0-9]{38}", created.content.decode())
    again = await client.get("/api-keys/")
    assert not re.search(r"lfsk_[A-Za-z0-9]{12}_[A-Za-z0-9]{38}", again.content.decode())


@pytest.mark.anyio
async def test_a_form_post_without_its_csrf_token_is_refused_through_asgi(user):
    client = AsyncClient(enforce_csrf_checks=True)
    await sign_in(client, "alice", "alice-password-1")
    refused = await client.post("/api-keys/new/", {"name": "no token"})
    assert refused.status_code == 403


@pytest.mark.anyio
async def test_api_answers_through_asgi_are_json_and_never_stored(user, make_key):
    _, raw_key = await sync_make_key(make_key, user)
    client = AsyncClient()
    whoami = await client.get("/api/v1/users/whoami", headers={"x-api-key": raw_key})
    assert whoami.status_code == 200 and whoami.json()["username"] == "alice"
    assert whoami["Cache-Control"] == "no-store"
    missing = await client.post("/api/v1/run/no-such-flow", {}, content_type="application/json",
                                headers={"x-api-key": raw_key})
    assert missing.status_code == 404 and missing.json() == {"detail": "Flow not found"}
    assert missing["Cache-Control"] == "no-store"


async def sync_make_key(make_key, user):
    from asgiref.sync import sync_to_async

    return await sync_to_async(make_key)(user)


@pytest.mark.anyio
async def test_static_files_are_served_whole_through_asgi():
    client = AsyncClient()
    response = await client.get("/static/css/app.css")
    assert response.status_code == 200
    assert not response.streaming and len(response.content) > 100
