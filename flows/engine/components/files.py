"""File (Langflow's Read File) and SaveToFile (Write File): the flow owner's files, through the
run's ``FileStore`` (``context.files``), never a path on the server's disk.

File reads txt, md, csv, json, pdf, docx and Langflow's other text types. A file is referred to
the way Langflow's v2 files API gives it: its path (``<user id>/<file id>.pdf``), its id, or its
name (``report.pdf``). Reading is bounded before anything is parsed: a text file must fit the
run's value room, a PDF or DOCX FILES_MAX_PARSE_BYTES; the parsing (``documents``) runs on a
worker thread, bounded in what it builds and by the run's deadline.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json

from django.conf import settings

from .. import documents
from ..errors import ComponentError
from ..filestore import FileNotFound, FileStore, FileStoreError, FileTooLarge, StoredFile
from ..limits import LimitExceeded, ValueTooLarge, json_size, text_size
from ..messages import Message, as_text
from .base import Component, register

DEFAULT_MAX_PARSE_BYTES = 20 * 1024 * 1024
LOCAL = "Local"


def _max_parse_bytes() -> int:
    return getattr(settings, "FILES_MAX_PARSE_BYTES", DEFAULT_MAX_PARSE_BYTES)


def _storage_location(value) -> str:
    """The storage a node chose: Langflow keeps ``[{"name": "Local", ...}]``; "" or [] means local."""
    if isinstance(value, list):
        value = value[0] if value else {}
    if isinstance(value, dict):
        value = value.get("name", "")
    return value if isinstance(value, str) and value else LOCAL


class _FileComponent(Component):
    def store(self) -> FileStore:
        if self.context.files is None:
            raise ComponentError(f"Node {self.node.id}: this run has no access to files.", node_ids=(self.node.id,))
        return self.context.files

    def file_error(self, error: FileStoreError) -> ComponentError:
        return ComponentError(f"Node {self.node.id}: {error}.", node_ids=(self.node.id,))

    def refuse_other_storage(self) -> None:
        location = _storage_location(self.params.get("storage_location"))
        if location != LOCAL:
            raise self.fail("storage_location", f"is {location!r}: this server reads and writes only the files "
                                                "uploaded to it (Local)")


@register("File")
class File(_FileComponent):
    """Langflow's File: the text of the chosen files, as a Message, rows, Data or their paths."""

    outputs = {
        "message": "load_files_message",
        "dataframe": "load_files_dataframe",
        "json": "load_files_json",
        "path": "load_files_path",
    }

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._loaded: list[tuple[StoredFile, str, bytes]] | None = None

    # -- Which files --------------------------------------------------------------------------

    def references(self) -> list[str]:
        """``file_path_str`` (a tool call's) if given; else ``path`` (Langflow keeps the chosen
        files' names or paths there) and whatever reaches ``file_path`` (Data with a
        ``file_path``, a Message, text)."""
        single = self.params.get("file_path_str")
        if isinstance(single, str) and single.strip():
            return [single.strip()]
        found: list[str] = []
        for field in ("path", "file_path"):
            self._collect(self.params.get(field), field, found)
        return list(dict.fromkeys(found))

    def _collect(self, value, field: str, found: list[str]) -> None:
        if value is None or value == "":
            return
        if isinstance(value, list):
            for item in value:
                self._collect(item, field, found)
        elif isinstance(value, str):
            if value.strip():
                found.append(value.strip())
        elif isinstance(value, Message):
            self._collect(value.text, field, found)
        elif isinstance(value, dict):
            record = value["data"] if isinstance(value.get("data"), dict) else value
            self._collect(record.get("file_path") or record.get("path") or record.get("text"), field, found)
        else:
            raise self.fail(field, "must name files (a path, an id or a name)")

    def refuse_unavailable(self) -> None:
        self.refuse_other_storage()
        if self.boolean("advanced_mode"):
            raise self.fail("advanced_mode", "(Docling) is not available on this server: turn it off to read "
                                             "PDF and DOCX with the standard parser")
        try:
            documents.check_encoding(self.text("text_encoding"))
        except documents.DocumentError:
            raise self.fail("text_encoding", "is not a known text encoding") from None

    def unsupported(self, file: StoredFile) -> ComponentError:
        supported = ", ".join(sorted(documents.SUPPORTED_EXTENSIONS))
        return ComponentError(f"Node {self.node.id}: {file.name!r} is not a file type this server reads "
                              f"({supported}).", node_ids=(self.node.id,))

    async def check(self) -> None:
        self.refuse_unavailable()
        references = self.references()
        if not references:
            return  # may come along an edge; load() says so when nothing does
        store = self.store()
        silent = self.boolean("silent_errors")
        for reference in references:
            try:
                file = await store.find(reference)
            except FileNotFound as error:
                if silent:
                    continue
                raise self.file_error(error) from None
            if file.extension not in documents.SUPPORTED_EXTENSIONS and not self.boolean(
                    "ignore_unsupported_extensions", True):
                raise self.unsupported(file)

    # -- Reading ------------------------------------------------------------------------------

    async def load(self) -> list[tuple[StoredFile, str, bytes]]:
        """Each readable file with its text (and its bytes, for rows), read once per run of the node."""
        if self._loaded is not None:
            return self._loaded
        self.refuse_unavailable()
        references = self.references()
        if not references:
            raise self.fail("path", "names no file: give the path or id that POST /api/v2/files returned, "
                                    "or the file's name")
        store = self.store()
        silent = self.boolean("silent_errors")
        budget = self.context.budget
        loaded, room = [], self.value_room()
        for reference in references:
            budget.check_time(self.node.id)
            try:
                file = await store.find(reference)
                if file.extension not in documents.SUPPORTED_EXTENSIONS:
                    if self.boolean("ignore_unsupported_extensions", True):
                        continue
                    raise self.unsupported(file)
                text, content = await self._read(store, file, room)
            except FileStoreError as error:
                if silent and not isinstance(error, FileTooLarge):
                    continue
                raise self.file_error(error) from None
            except documents.DocumentError as error:
                if silent:
                    continue
                raise ComponentError(f"Node {self.node.id}: {file.name!r} {error}.", node_ids=(self.node.id,)) from None
            room -= text_size(text)
            loaded.append((file, text, content))
        if not loaded:
            raise ComponentError(f"Node {self.node.id}: none of its files could be read.", node_ids=(self.node.id,))
        self._loaded = loaded
        return loaded

    async def _read(self, store: FileStore, file: StoredFile, room: int) -> tuple[str, bytes]:
        document = file.extension in documents.DOCUMENT_EXTENSIONS
        max_bytes = _max_parse_bytes() if document else room
        if file.size > max_bytes:
            if document:
                raise LimitExceeded(f"Node {self.node.id}: {file.name!r} is larger than FILES_MAX_PARSE_BYTES "
                                    f"({max_bytes:,} bytes).", node_ids=(self.node.id,))
            raise self.too_large()
        _, content = await store.read(file.reference, max_bytes=max_bytes)
        budget = self.context.budget
        try:
            text = await asyncio.to_thread(
                documents.extract_text, file.extension, content, encoding=self.text("text_encoding"),
                limit=room, deadline=budget.deadline, max_unpacked=4 * _max_parse_bytes(),
            )
        except ValueTooLarge:
            raise self.too_large() from None
        except TimeoutError:
            raise budget.out_of_time(self.node.id) from None
        budget.check_time(self.node.id)
        return text, content

    # -- Outputs ------------------------------------------------------------------------------

    async def load_files_message(self) -> Message:
        """The files' texts joined by ``separator`` (a blank line by default)."""
        texts = [text for _, text, _ in await self.load()]
        separator = self.params.get("separator")
        separator = separator if isinstance(separator, str) and separator else "\n\n"
        if sum(map(text_size, texts)) + text_size(separator) * (len(texts) - 1) > self.value_room():
            raise self.too_large()
        return self.message(separator.join(texts), sender="Machine", sender_name="AI")

    async def load_files_dataframe(self) -> list[dict]:
        """One CSV file: its rows; otherwise one row per file, with its path and text."""
        loaded = await self.load()
        if len(loaded) == 1 and loaded[0][0].extension == "csv":
            try:
                return await asyncio.to_thread(documents.csv_rows, loaded[0][1], limit=self.value_room())
            except ValueTooLarge:
                raise self.too_large() from None
            except documents.DocumentError as error:
                raise ComponentError(f"Node {self.node.id}: {loaded[0][0].name!r} {error}.",
                                     node_ids=(self.node.id,)) from None
        return [{"file_path": file.reference, "text": text} for file, text, _ in loaded]

    async def load_files_json(self):
        """One JSON file, parsed: an object as Data, anything else under ``data``."""
        loaded = await self.load()
        if len(loaded) != 1 or loaded[0][0].extension != "json":
            raise self.fail("path", "must name one .json file for the JSON output")
        value = json.loads(loaded[0][1])  # already checked and normalised by documents.extract_text
        return value if isinstance(value, dict) else {"data": value}

    async def load_files_path(self) -> Message:
        """The files' paths, one a line."""
        loaded = await self.load()
        return self.message("\n".join(file.reference for file, _, _ in loaded), sender="Machine", sender_name="AI")


# --- Writing --------------------------------------------------------------------------------------

MESSAGE_FORMATS = ("txt", "json", "markdown")
DATA_FORMATS = ("csv", "json", "markdown")
EXTENSIONS = {"markdown": "md"}


def _records(value) -> list[dict]:
    rows = value if isinstance(value, list) else [value]
    return [row["data"] if isinstance(row.get("data"), dict) else row for row in rows]


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _columns(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(key for row in rows for key in row))


def _csv(rows: list[dict], *, header: bool = True) -> str:
    columns = _columns(rows)
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
    return out.getvalue()


def _markdown_table(rows: list[dict]) -> str:
    columns = _columns(rows)

    def line(cells) -> str:
        return "| " + " | ".join(" ".join(cell.split()).replace("|", "\\|") for cell in cells) + " |"

    lines = [line(columns), "|" + "|".join("---" for _ in columns) + "|"]
    lines += [line(_cell(row.get(column)) for column in columns) for row in rows]
    return "\n".join(lines)


def _existing_json(old: str) -> list:
    try:
        parsed = json.loads(old) if old.strip() else []
    except ValueError:
        return []
    return parsed if isinstance(parsed, list) else [parsed]


def render(kind: str, value, fmt: str, previous: str | None) -> str:
    """The file's content, in Langflow's layouts; ``previous`` is the old content when appending."""
    if kind == "Message":
        text = as_text(value)
        if fmt == "txt":
            return text if previous is None else f"{previous}\n{text}"
        if fmt == "json":
            if previous is None:
                return json.dumps({"message": text}, indent=2, ensure_ascii=False)
            return json.dumps([*_existing_json(previous), {"message": text}], indent=2, ensure_ascii=False)
        content = f"**Message:**\n\n{text}"
        return content if previous is None else f"{previous}\n\n{content}"
    rows = _records(value)
    if fmt == "csv":
        return _csv(rows) if previous is None else previous + _csv(rows, header=False)
    if fmt == "json":
        data = rows if kind == "DataFrame" else rows[0]
        if previous is None:
            return json.dumps(data, indent=2, ensure_ascii=False, default=str)
        return json.dumps([*_existing_json(previous), *rows], indent=2, ensure_ascii=False, default=str)
    table = _markdown_table(rows)
    return table if previous is None else f"{previous}\n\n{table}"


@register("SaveToFile")
class SaveToFile(_FileComponent):
    """Langflow's Write File: the input saved as a new file of the flow's owner (Local storage)."""

    outputs = {"message": "save_to_file"}

    def kind(self) -> str:
        value = self.params.get("input")
        if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            return "DataFrame"
        if isinstance(value, dict):
            return "Data"
        return "Message"

    def file_format(self, kind: str) -> str:
        fmt = self.text("local_format") or self.text("file_format") or ("csv" if kind == "DataFrame" else "json")
        allowed = MESSAGE_FORMATS if kind == "Message" else DATA_FORMATS
        if fmt not in allowed:
            raise self.fail("local_format", f"is {fmt!r}: a {kind} is saved as {', '.join(allowed)}")
        return fmt

    def file_name(self, fmt: str) -> str:
        name = self.text("file_name").strip()
        if not name:
            raise self.fail("file_name", "is required")
        extension = EXTENSIONS.get(fmt, fmt)
        return name if name.lower().endswith(f".{extension}") else f"{name}.{extension}"

    async def check(self) -> None:
        self.refuse_other_storage()
        if "file_name" in self.params:
            self.file_name("txt")
        if "input" in self.params and self.params["input"] not in (None, ""):
            self.file_format(self.kind())
        self.store()

    async def save_to_file(self) -> Message:
        self.refuse_other_storage()
        kind = self.kind()
        fmt = self.file_format(kind)
        name = self.file_name(fmt)
        store = self.store()
        limit = min(self.value_room(), getattr(settings, "FILES_MAX_UPLOAD_BYTES", self.value_room()))
        value = self.params.get("input")
        if json_size(value) > limit:
            raise self.too_large()
        append = self.boolean("append_mode")
        previous = None
        try:
            if append:
                try:
                    _, old = await store.read(name, max_bytes=limit)
                    previous = documents.decode(old)
                except FileNotFound:
                    previous = None
                except documents.DocumentError:
                    raise self.fail("append_mode", f"cannot append to {name!r}: it is not UTF-8 text") from None
            content = await asyncio.to_thread(render, kind, value, fmt, previous)
            data = content.encode("utf-8")
            if len(data) > limit:
                raise self.too_large()
            stored = await store.save(name, data, replace=append)
        except FileStoreError as error:
            raise self.file_error(error) from None
        return self.message(f"{kind} saved successfully as {stored.name!r} at {stored.reference}",
                            sender="Machine", sender_name="AI")
