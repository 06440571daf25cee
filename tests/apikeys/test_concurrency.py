"""N concurrent authenticated requests must add exactly N uses, on a real database."""

import threading

import pytest
from django.db import connection, connections
from django.test import Client

from apikeys.models import ApiKey

THREADS = 8
REQUESTS_PER_THREAD = 12


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_are_all_counted(user, make_key):
    if connection.vendor == "sqlite":
        assert connection.settings_dict["NAME"] != ":memory:" and "memory" not in str(
            connection.settings_dict["NAME"]
        ), "the concurrency test needs a real database file"
    api_key, raw = make_key(user)
    barrier = threading.Barrier(THREADS)
    statuses: list[int] = []
    lock = threading.Lock()

    def worker():
        client = Client()
        barrier.wait()
        try:
            for _ in range(REQUESTS_PER_THREAD):
                status = client.get("/api/v1/users/whoami", HTTP_X_API_KEY=raw).status_code
                with lock:
                    statuses.append(status)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200] * (THREADS * REQUESTS_PER_THREAD)
    api_key.refresh_from_db()
    assert api_key.total_uses == THREADS * REQUESTS_PER_THREAD
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at is not None
