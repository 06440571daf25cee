"""The data directory (DATA_DIR): where the secrets and the SQLite database live, owner-only.

Settings only read it. The entry points (``manage.py``, ``asgi.py``, ``wsgi.py`` and the test
runner's plugin) call ``prepare()`` first, before Django loads the settings: it creates the
directory (0700), the generated secrets (0600) and the SQLite file (0600, so that SQLite's -wal
and -shm files copy that mode), so that importing the settings writes nothing.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

#: The generated secrets: used when SECRET_KEY / API_KEY_PEPPERS are not set.
SECRET_FILES = ("secret_key", "api_key_pepper")
#: The generated key of users' Credential variables ("1:<base64 of 32 random bytes>", the format
#: of VARIABLE_ENCRYPTION_KEYS), used when VARIABLE_ENCRYPTION_KEYS is not set.
VARIABLE_KEY_FILE = "variable_encryption_keys"


def data_dir() -> Path:
    return Path(env.str("DATA_DIR", default=str(BASE_DIR / "data")))


def default_database_url() -> str:
    return f"sqlite:///{data_dir() / 'db.sqlite3'}"


def read_secret(name: str) -> str:
    """The secret generated into DATA_DIR by ``prepare()``.

    A constant in the code would be shared by every install; a fresh value at every start would
    log everybody out (and, for the pepper, break every key).
    """
    path = data_dir() / name
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        raise ImproperlyConfigured(
            f"{path} is missing: start the site through manage.py, langflow_site.asgi or "
            "langflow_site.wsgi (they create it), or set the secret in the environment"
        ) from None


def prepare() -> None:
    """Create what the settings read from DATA_DIR, readable by its owner only. Idempotent."""
    directory = data_dir()
    _private_directory(directory)
    for name in SECRET_FILES:
        _create_secret(directory / name)
    _create_secret(directory / VARIABLE_KEY_FILE, "1:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
    database = env.db("DATABASE_URL", default=default_database_url())
    if database["ENGINE"] == "django.db.backends.sqlite3" and database["NAME"] not in ("", ":memory:"):
        path = Path(database["NAME"])
        if path.parent.is_dir():
            _private_sqlite_files(path)


def _private_directory(path: Path) -> None:
    """Create ``path`` 0700, or tighten it: it holds the secrets and the database."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077 and path.stat().st_uid == os.getuid():
        path.chmod(0o700)


def _create_secret(path: Path, value: str | None = None) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # made earlier, or by another worker just now: keep it
        return
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(50) if value is None else value)


def _private_sqlite_files(path: Path) -> None:
    """Create the SQLite file 0600 before SQLite does (with 0644); files left readable by an
    older version are tightened."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            if name.stat().st_mode & 0o077 and name.stat().st_uid == os.getuid():
                name.chmod(0o600)
        except FileNotFoundError:
            pass
