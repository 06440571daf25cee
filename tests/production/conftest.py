"""Fixtures for tests that build their own site: a temporary DATA_DIR, its database, a real gunicorn."""

import os

import pytest

from tests.harness.server import AppServer, prepare_site, site_env, upload_echo_flow

SHARED_DATABASE = not os.environ.get("DATABASE_URL", "sqlite").startswith("sqlite")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "own_site: builds its own database and servers, whatever DATABASE_URL says, so it runs once: "
        "in the SQLite pass, not again in the PostgreSQL pass where it would repeat itself",
    )


def pytest_collection_modifyitems(config, items):
    if not SHARED_DATABASE:
        return
    skip = pytest.mark.skip(reason="uses its own database and servers; it ran in the SQLite pass (no DATABASE_URL)")
    for item in items:
        if item.get_closest_marker("own_site"):
            item.add_marker(skip)


@pytest.fixture
def site(tmp_path):
    """A migrated SQLite site in a temporary DATA_DIR: ``(env, raw key named "load")``."""
    env = site_env(tmp_path / "data")
    return env, prepare_site(env)


@pytest.fixture
def served_site(site):
    """The site served by gunicorn (2 workers) with the echo flow: ``(server, env, raw key, run URL)``."""
    env, raw_key = site
    with AppServer(env, workers=2) as server:
        flow_id = upload_echo_flow(server, raw_key)
        yield server, env, raw_key, server.url(f"/api/v1/run/{flow_id}?stream=false")
