"""The engine's ``FileStore`` (``flows.engine.filestore``) over the files app: one flow owner's
files, for one run.

Database work goes to the database threads (``core.dbthreads``), storage reads to a worker
thread: nothing here blocks the event loop.
"""

from __future__ import annotations

import asyncio

from core import dbthreads
from files import services
from files.models import UserFile
from files.storage import file_storage

from .engine.filestore import FileNotFound, FileStoreError, FileTooLarge, StoredFile


def _stored(file: UserFile) -> StoredFile:
    return StoredFile(reference=file.path, name=file.filename, size=file.size)


def _read_blob(path: str, max_bytes: int) -> bytes:
    with file_storage().open(path, "rb") as handle:
        content = handle.read(max_bytes + 1)
    if len(content) > max_bytes:  # it grew since its size was read
        raise FileTooLarge(f"the file is larger than {max_bytes:,} bytes")
    return content


class OwnerFileStore:
    """The files of the user ``owner_id``; nobody else's is ever found."""

    def __init__(self, owner_id):
        self.owner_id = owner_id

    async def _row(self, reference: str) -> UserFile:
        file = await dbthreads.run(services.find_file, self.owner_id, reference)
        if file is None:
            raise FileNotFound(f"no file of yours is {reference!r} (upload it with POST /api/v2/files, "
                               "then give its path or id)")
        return file

    async def find(self, reference: str) -> StoredFile:
        return _stored(await self._row(reference))

    async def read(self, reference: str, *, max_bytes: int) -> tuple[StoredFile, bytes]:
        file = await self._row(reference)
        if file.size > max_bytes:
            raise FileTooLarge(f"{file.filename!r} is larger than {max_bytes:,} bytes")
        try:
            content = await asyncio.to_thread(_read_blob, file.path, max_bytes)
        except FileNotFoundError:
            raise FileNotFound(f"the stored bytes of {file.filename!r} are missing") from None
        return _stored(file), content

    async def save(self, name: str, content: bytes, *, replace: bool = False) -> StoredFile:
        try:
            file = await dbthreads.run(services.save_bytes, owner_id=self.owner_id, name=name, content=content,
                                       replace=replace)
        except services.FileTooLarge as error:
            raise FileTooLarge(str(error)) from None
        except services.BadFileName as error:
            raise FileStoreError(str(error)) from None
        return _stored(file)
