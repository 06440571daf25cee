"""Throwaway PostgreSQL databases for the tests and benchmarks that start their own servers."""

from __future__ import annotations

import uuid


def postgres_database(url: str):
    """Create a throwaway database next to ``url``'s; return (its URL, a function that drops it)."""
    import psycopg

    name = f"throwaway_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return url.rsplit("/", 1)[0] + "/" + name, drop
