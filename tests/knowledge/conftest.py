"""Fixtures for the knowledge tests: an embeddings server on loopback, keys, a base made through the API."""

import pytest

from tests.flows.conftest import closed_port

from .embeddings_stub import EmbeddingsStub


@pytest.fixture(autouse=True)
def model_settings(settings):
    """No test reaches a real model server: the default base URL refuses connections."""
    settings.OPENAI_BASE_URL = f"http://127.0.0.1:{closed_port()}/v1"
    settings.OPENAI_API_KEY = "server-side-key"
    settings.OPENAI_MODEL = "test-model"
    settings.OPENAI_TIMEOUT = 5.0
    settings.EMBEDDING_BASE_URL = ""
    settings.EMBEDDING_API_KEY = ""
    settings.MODEL_ALLOWED_BASE_URLS = []
    return settings


@pytest.fixture
def embedder(settings):
    """The embeddings stub, as the operator's EMBEDDING_BASE_URL with its own key."""
    with EmbeddingsStub() as stub:
        settings.EMBEDDING_BASE_URL = stub.base_url
        settings.EMBEDDING_API_KEY = "embedding-key"
        yield stub


@pytest.fixture
def key(user, make_key):
    return make_key(user)[1]


@pytest.fixture
def other_key(other_user, make_key):
    return make_key(other_user)[1]


def create_base(api_client, key, name="handbook", **extra):
    return api_client.post("/api/v1/knowledge_bases", {"name": name, "embedding_provider": "OpenAI",
                                                        "embedding_model": "text-embedding-3-small", **extra},
                           format="json", HTTP_X_API_KEY=key)


def ingest_text(api_client, key, name, text, **extra):
    return api_client.post(f"/api/v1/knowledge_bases/{name}/ingest", {"text": text, **extra}, format="json",
                           HTTP_X_API_KEY=key)


HANDBOOK = (
    "Vacation policy: employees get twenty five days of paid vacation each year.\n\n"
    "Expense policy: travel expenses are reimbursed within thirty days with receipts.\n\n"
    "Security policy: laptops must use disk encryption and a screen lock."
)
