"""What the File and Save File components need from the files of the flow's owner.

The engine stores nothing itself: a run is given a ``FileStore`` on its ``RunContext`` (the
Django app ``files`` implements it over its storage, scoped to the owner of the flow), and a
run without one reads and writes no file. Every method is async: a store reads the database
and the storage off the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class StoredFile:
    """One of the owner's files: ``reference`` is the path Langflow's API shows for it
    (``<user id>/<file id>.<extension>``), ``name`` its name with its extension."""

    reference: str
    name: str
    size: int

    @property
    def extension(self) -> str:
        """The lowercase extension without its dot, or ""."""
        stem, dot, extension = self.name.rpartition(".")
        return extension.lower() if dot and stem else ""


class FileStoreError(Exception):
    """A file cannot be found, read or written; ``str(error)`` is safe to show (the component
    adds the node)."""


class FileNotFound(FileStoreError):
    """No file of the owner answers to the reference (another user's file is not found either)."""


class FileTooLarge(FileStoreError):
    """A file larger than the reader allows, or a write past the owner's quota or the upload limit."""


class FileStore(Protocol):
    async def find(self, reference: str) -> StoredFile:
        """The owner's file that ``reference`` names: a file id, the path the API gave, or its
        name (``report.pdf``, optionally after ``<user id>/``). Raise FileNotFound."""

    async def read(self, reference: str, *, max_bytes: int) -> tuple[StoredFile, bytes]:
        """The file and its content; raise FileNotFound, or FileTooLarge before reading a file
        of more than ``max_bytes``."""

    async def save(self, name: str, content: bytes, *, replace: bool = False) -> StoredFile:
        """Store ``content`` as a new file of the owner called ``name`` (made unique as uploads
        are), or, with ``replace``, as the new content of the owner's file of that name when
        there is one. Raise FileTooLarge past the upload limit or the owner's quota."""
