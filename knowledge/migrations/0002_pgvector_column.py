"""On PostgreSQL with the pgvector extension available: enable it and give chunks a ``vector``
column that knowledge.vectors searches with ``<=>``. Anywhere else nothing changes (the exact
scan serves). The column has no fixed dimension (each base fixes its own), so it has no index:
the search is an exact scan inside PostgreSQL, bounded by KNOWLEDGE_MAX_CHUNKS."""

from django.db import DatabaseError, migrations, transaction


def add_vector_column(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
        if cursor.fetchone() is None:
            return
        try:
            with transaction.atomic(using=connection.alias):
                cursor.execute("CREATE EXTENSION IF NOT EXISTS vector")
                cursor.execute("ALTER TABLE knowledge_chunk ADD COLUMN IF NOT EXISTS embedding_vector vector")
        except DatabaseError:  # e.g. not allowed to create the extension: the exact scan serves
            return


def drop_vector_column(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("ALTER TABLE knowledge_chunk DROP COLUMN IF EXISTS embedding_vector")


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0001_initial")]
    operations = [migrations.RunPython(add_vector_column, drop_vector_column)]
