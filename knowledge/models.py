"""A user's knowledge bases and their chunks: text, metadata and embedding vector."""

import uuid

from django.conf import settings
from django.db import models


class KnowledgeBase(models.Model):
    """One knowledge base, as Langflow's ``/api/v1/knowledge_bases`` shows it; ``name`` is its
    ``dir_name`` there (3 to 63 letters, digits, ``_`` or ``-``), unique per owner.

    ``dimensions`` is the length of its vectors, fixed by the first ingestion (every later
    vector, a query's too, must have it)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="knowledge_bases")
    name = models.CharField(max_length=63)
    embedding_provider = models.CharField(max_length=100, default="OpenAI")
    embedding_model = models.CharField(max_length=200)
    dimensions = models.PositiveIntegerField(null=True, blank=True)
    # Langflow's schema.json: the column configuration of its first ingestion from a flow.
    column_config = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="knowledge_unique_name_per_owner")]

    def __str__(self) -> str:
        return self.name


class Chunk(models.Model):
    """One piece of text of a knowledge base with its metadata and its vector (float32, little-endian).

    ``content_hash`` is Langflow's ``_id``: the SHA-256 of the row's identifier columns, which
    ``allow_duplicates=False`` compares."""

    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="chunks")
    text = models.TextField()
    metadata = models.JSONField(default=dict, blank=True)
    content_hash = models.CharField(max_length=64)
    words = models.PositiveIntegerField(default=0)
    embedding = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["knowledge_base", "content_hash"], name="knowledge_chunk_hash")]

    def __str__(self) -> str:
        return self.text[:50]
