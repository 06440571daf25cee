"""Operations on users' files: store, find, rename, delete.

Limits: one file at most FILES_MAX_UPLOAD_BYTES, one user's files together at most
FILES_MAX_USER_BYTES (both raise ``FileTooLarge``, which the API answers with 413). A name is
cleaned of directories and control characters (``clean_name``; ``BadFileName`` when nothing is
left); where the bytes are stored is made here, from the owner's and the file's ids.
"""

from __future__ import annotations

import re
import unicodedata
import uuid

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile, File
from django.db import IntegrityError, transaction
from django.db.models import Sum

from .models import UserFile
from .storage import delete_blob, file_storage

FILE_NOT_FOUND = "File not found"
# The longest name kept (without the extension), so that " (123)" still fits in the column.
MAX_STEM_LENGTH = 200
_EXTENSION = re.compile(r"[A-Za-z0-9]{1,16}")
# Characters that name a path or are refused by common file systems, replaced in names.
_RESERVED = re.compile(r'[<>:"|?*]')
_NUMBERED = re.compile(r" \((\d+)\)$")


class BadFileName(ValueError):
    """A name with nothing usable left once cleaned, or one taken (renaming)."""


class FileTooLarge(Exception):
    """Past FILES_MAX_UPLOAD_BYTES or the owner's FILES_MAX_USER_BYTES; the message names the setting."""


def clean_name(raw: str) -> tuple[str, str]:
    """Return ``(stem, extension)`` of a client's file name: its last path component, NFC,
    without control or format characters, reserved characters as "_", spaces collapsed, no
    trailing dots. The extension (lowercase, no dot) is kept only when it is 1-16 letters or
    digits; a stem is cut to MAX_STEM_LENGTH characters. Raise BadFileName when nothing is left."""
    name = unicodedata.normalize("NFC", raw or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(char for char in name if unicodedata.category(char)[0] != "C")
    name = " ".join(_RESERVED.sub("_", name).split()).rstrip(" .")
    if not name.strip("."):
        raise BadFileName("The file name is empty once cleaned of paths and control characters.")
    stem, dot, extension = name.rpartition(".")
    if not (dot and stem and _EXTENSION.fullmatch(extension)):
        stem, extension = name, ""
    return stem[:MAX_STEM_LENGTH].rstrip(" .") or "file", extension.lower()


def owned_files(owner_id):
    return UserFile.objects.filter(owner_id=owner_id)


def used_bytes(owner_id) -> int:
    return owned_files(owner_id).aggregate(total=Sum("size"))["total"] or 0


def _refuse_oversized(size: int) -> None:
    limit = settings.FILES_MAX_UPLOAD_BYTES
    if size > limit:
        raise FileTooLarge(f"The file is larger than FILES_MAX_UPLOAD_BYTES ({limit:,} bytes).")


def _refuse_over_quota(owner_id, adding: int) -> None:
    limit = settings.FILES_MAX_USER_BYTES
    if adding > 0 and used_bytes(owner_id) + adding > limit:
        raise FileTooLarge(f"Your files would take more than FILES_MAX_USER_BYTES ({limit:,} bytes): "
                           "delete some first.")


def _free_name(owner_id, stem: str) -> str:
    """``stem``, or Langflow's "stem (n)" with n one more than the highest taken."""
    taken = set(owned_files(owner_id).filter(name__startswith=stem).values_list("name", flat=True))
    if stem not in taken:
        return stem
    numbers = [int(match.group(1)) for name in taken
               if name.startswith(stem) and (match := _NUMBERED.fullmatch(name[len(stem):]))]
    return f"{stem} ({max(numbers, default=0) + 1})"


def _lock_owner(owner_id) -> None:
    """Serialise one owner's writes (quota and names): a row lock on PostgreSQL; SQLite's
    IMMEDIATE transactions already take the write lock at BEGIN."""
    list(get_user_model().objects.select_for_update().filter(pk=owner_id).values_list("pk"))


def store_file(*, owner_id, name: str, content: File, size: int, replace: bool = False) -> UserFile:
    """Store ``content`` (``size`` bytes) as the owner's file ``name``; return its row.

    A name already taken gets " (n)" as in Langflow, unless ``replace`` asks to give the file of
    that name (and extension) this content instead. Raise BadFileName, or FileTooLarge past
    FILES_MAX_UPLOAD_BYTES or the owner's FILES_MAX_USER_BYTES. The bytes are written before
    the row, outside any transaction; the quota is checked again, exactly, in the short one that
    writes the row, and the bytes deleted if it refuses.
    """
    stem, extension = clean_name(name)
    _refuse_oversized(size)
    _refuse_over_quota(owner_id, size)  # before writing anything: cheap, and usually the answer
    file_id = uuid.uuid4()
    suffix = f".{extension}" if extension else ""
    path = file_storage().save(f"{owner_id}/{file_id}{suffix}", content)
    try:
        for _ in range(3):  # another request may take the free name first (PostgreSQL only)
            try:
                return _record(owner_id, file_id, stem, suffix, path, size, replace)
            except IntegrityError:
                continue
        raise IntegrityError("No free name found for the file.")
    except BaseException:
        delete_blob(path)
        raise


@transaction.atomic
def _record(owner_id, file_id, stem: str, suffix: str, path: str, size: int, replace: bool) -> UserFile:
    _lock_owner(owner_id)
    existing = None
    if replace:
        existing = next((file for file in owned_files(owner_id).filter(name=stem) if file.extension == suffix), None)
    _refuse_over_quota(owner_id, size - (existing.size if existing else 0))
    if existing is not None:
        old_path = existing.path
        existing.path, existing.size = path, size
        existing.save(update_fields=["path", "size", "updated_at"])
        transaction.on_commit(lambda: delete_blob(old_path))
        return existing
    with transaction.atomic():  # a savepoint: a lost name race leaves the outer transaction usable
        return UserFile.objects.create(id=file_id, owner_id=owner_id, name=_free_name(owner_id, stem),
                                       path=path, size=size)


def save_bytes(*, owner_id, name: str, content: bytes, replace: bool = False) -> UserFile:
    """``store_file`` for bytes made on the server (the Save File component)."""
    return store_file(owner_id=owner_id, name=name, content=ContentFile(content), size=len(content),
                      replace=replace)


def find_file(owner_id, reference: str) -> UserFile | None:
    """The owner's file that ``reference`` names, or None. A reference is a file id; the path the
    API shows (``<owner id>/<file id>.pdf``); or the file's name (``report.pdf``), optionally
    after ``<owner id>/``. A reference under another user's id finds nothing."""
    reference = (reference or "").strip()
    mine = owned_files(owner_id)
    try:
        return mine.filter(pk=uuid.UUID(reference)).first()
    except ValueError:
        pass
    prefix, slash, rest = reference.partition("/")
    if slash:
        try:
            if uuid.UUID(prefix) != uuid.UUID(str(owner_id)):
                return None
        except ValueError:
            return None
        reference = rest
        found = mine.filter(path=f"{owner_id}/{rest}").first()
        if found is not None:
            return found
    if not reference or "/" in reference:
        return None
    stem, dot, extension = reference.rpartition(".")
    candidates = [(stem, f".{extension.lower()}")] if dot and stem else []
    candidates.append((reference, ""))
    for name, suffix in candidates:
        found = mine.filter(name=name).first()
        if found is not None and found.extension == suffix:
            return found
    return None


def rename_file(file: UserFile, name: str) -> UserFile:
    """Give ``file`` a new name (its extension stays); a taken name is refused with BadFileName."""
    stem, _ = clean_name(name)
    if owned_files(file.owner_id).filter(name=stem).exclude(pk=file.pk).exists():
        raise BadFileName(f"You already have a file named {stem!r}.")
    file.name = stem
    try:
        with transaction.atomic():
            file.save(update_fields=["name", "updated_at"])
    except IntegrityError:
        raise BadFileName(f"You already have a file named {stem!r}.") from None
    return file


def delete_file(file: UserFile) -> None:
    """Delete the row; its bytes follow once the deletion is committed (``files.signals``)."""
    with transaction.atomic():
        file.delete()


def delete_all_files(owner_id) -> int:
    """Delete every file of the owner; return how many."""
    with transaction.atomic():
        count, _ = owned_files(owner_id).delete()
    return count
