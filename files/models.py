"""A user's file: its row here, its bytes in the "files" storage (``files.storage``)."""

import uuid
from pathlib import PurePosixPath

from django.conf import settings
from django.db import models


class UserFile(models.Model):
    """One uploaded (or Save File-written) file, owned by one user, as Langflow's v2 files API shows it.

    ``name`` is Langflow's: the file's name without its extension, unique per owner ("report",
    "report (1)"). ``path`` is where the bytes are in the storage, ``<owner id>/<file id>.<extension>``:
    made here, never taken from the client.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="files")
    name = models.CharField(max_length=255)
    path = models.CharField(max_length=255, unique=True)
    size = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="files_unique_name_per_owner")]

    def __str__(self) -> str:
        return self.filename

    @property
    def extension(self) -> str:
        """The extension, lowercase, with its dot (".pdf"), or ""."""
        return PurePosixPath(self.path).suffix

    @property
    def filename(self) -> str:
        """The name a download is saved as: ``report.pdf``."""
        return f"{self.name}{self.extension}"
