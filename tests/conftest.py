import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from apikeys.services import create_api_key


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    """Argon2 is right in production and needlessly slow in tests."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def static_files_without_collectstatic(settings):
    """Serve static files from the source folders, so tests need no collectstatic run."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True


@pytest.fixture(autouse=True)
def database_work_inside_the_test_transaction(settings):
    """The async run endpoints do their queries on a pool of threads, which would not see the
    test's uncommitted rows: in tests they run on the calling thread. The servers started by
    tests/production (and `make bench`) use the pool."""
    settings.DB_WORK_ON_CALLING_THREAD = True


@pytest.fixture(autouse=True)
def empty_cache():
    """Throttle counters live in the cache (Redis in CI's second pass): each test starts from zero."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user(username="alice", password="alice-password-1")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user(username="bob", password="bob-password-1")


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def make_key():
    """Create a key; return ``(api_key, raw_key)``."""

    def _make(user, **kwargs):
        return create_api_key(user=user, **kwargs)

    return _make
