"""Work done once when an application server process starts."""

import logging

from django.db import DatabaseError

logger = logging.getLogger(__name__)


def on_server_start() -> None:
    """Bootstrap the superuser; a database that is not ready yet must not stop the server."""
    from users.services import ensure_superuser

    try:
        ensure_superuser()
    except DatabaseError:
        logger.exception("Could not bootstrap the superuser; run 'python manage.py migrate' first.")
