"""Where users' files' bytes live: the "files" entry of settings.STORAGES (under DATA_DIR by
default; any Django storage backend, object storage included, can take its place)."""

import logging

from django.core.files.storage import Storage, storages

logger = logging.getLogger("files")


def file_storage() -> Storage:
    return storages["files"]


def delete_blob(path: str) -> None:
    """Delete stored bytes; a failure is logged, never raised (the row is already gone)."""
    try:
        file_storage().delete(path)
    except Exception:  # noqa: BLE001 - any backend's error: the file is orphaned, not lost
        logger.exception("Could not delete the stored file %s", path)
