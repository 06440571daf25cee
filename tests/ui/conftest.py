import random

import pytest

from users.services import ensure_superuser


@pytest.fixture
def client_ip():
    """A client address of its own for each test, so sign-in failure counters never collide.

    (The cache may be a shared Redis; documentation addresses, never contacted.)
    """
    return f"2001:db8::{random.randrange(1 << 16):x}:{random.randrange(1 << 16):x}"


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def superuser():
    user, _created = ensure_superuser()
    return user
