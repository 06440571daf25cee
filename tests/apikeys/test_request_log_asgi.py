"""The request log as the site serves it (ASGI): the middleware notes the request on the event loop,
and the batch is written when Django closes the answer, on a thread."""

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from apikeys.models import ApiKeyRequest
from apikeys.services import create_api_key
from core import middleware as site_middleware

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(autouse=True)
def served_as_asgi_serves(settings):
    settings.MIDDLEWARE = site_middleware.for_asgi(settings.MIDDLEWARE)
    settings.REQUEST_LOG_ENABLED = True
    settings.REQUEST_LOG_FLUSH_SECONDS = 0


@pytest.mark.anyio
async def test_a_keyed_request_through_asgi_is_logged_once_answered(user):
    api_key, raw = await sync_to_async(create_api_key)(user=user, name="asgi")
    response = await AsyncClient().get("/api/v1/users/whoami", headers={"x-api-key": raw})
    assert response.status_code == 200
    rows = await sync_to_async(list)(ApiKeyRequest.objects.filter(api_key=api_key).values_list("path", "status"))
    assert rows == [("/api/v1/users/whoami", 200)]
