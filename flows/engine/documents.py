"""Text out of a file's bytes: plain text formats, JSON, CSV rows, PDF (pypdf) and DOCX (python-docx).

Pure and synchronous: the File component runs these on a worker thread (parsing a PDF is CPU
work), after refusing a file larger than it allows. Each function is bounded: what it builds
is measured as it goes and refused past ``limit`` UTF-8 bytes (ValueTooLarge), a PDF is read
page by page until ``deadline`` (``time.monotonic()``; TimeoutError past it), and a DOCX's
parts are refused before they are unpacked when they would unpack to more than ``max_unpacked``.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import time
import zipfile

from .limits import ValueTooLarge, text_size
from .structure import load_json

# Langflow's TEXT_FILE_TYPES: read as text (JSON normalised, CSV also as rows).
TEXT_EXTENSIONS = frozenset({
    "txt", "md", "mdx", "csv", "json", "yaml", "yml", "xml", "html", "htm", "py", "sh", "sql", "js", "ts", "tsx",
})
DOCUMENT_EXTENSIONS = frozenset({"pdf", "docx"})
SUPPORTED_EXTENSIONS = TEXT_EXTENSIONS | DOCUMENT_EXTENSIONS
PAGE_SEPARATOR = "\n\n"


class DocumentError(ValueError):
    """The bytes cannot be read as their extension says; the message is safe to show."""


def check_encoding(encoding: str) -> str:
    """The codec's name for ``encoding`` ("" is UTF-8, a byte-order mark allowed); DocumentError if unknown."""
    if not encoding:
        return "utf-8-sig"
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise DocumentError(f"{encoding!r} is not a known text encoding") from None


def decode(content: bytes, encoding: str = "") -> str:
    codec = check_encoding(encoding)
    try:
        return content.decode(codec)
    except UnicodeDecodeError:
        named = "UTF-8" if codec == "utf-8-sig" else codec
        raise DocumentError(f"is not {named} text (set the node's text_encoding)") from None


def _fit(text: str, limit: int) -> str:
    if text_size(text) > limit:
        raise ValueTooLarge(limit)
    return text


def extract_text(extension: str, content: bytes, *, encoding: str = "", limit: int, deadline: float,
                 max_unpacked: int) -> str:
    """The text Langflow's File component gives for a file of this extension."""
    if extension == "pdf":
        return pdf_text(content, limit=limit, deadline=deadline)
    if extension == "docx":
        return docx_text(content, limit=limit, max_unpacked=max_unpacked)
    text = decode(content, encoding)
    if extension == "json":
        # Langflow loads JSON and writes it back compactly.
        return _fit(json.dumps(parse_json(text), ensure_ascii=False), limit)
    return _fit(text, limit)


def parse_json(text: str):
    try:
        return load_json(text)
    except ValueError as error:
        raise DocumentError(f"is not valid JSON: {error}") from None


def csv_rows(text: str, *, limit: int) -> list[dict[str, str]]:
    """The rows of a CSV with a header line, as records; counted as each key and value's bytes."""
    rows, size = [], 0
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        for row in reader:
            record = {"" if key is None else key: value if isinstance(value, str) else
                      ("" if value is None else ",".join(value)) for key, value in row.items()}
            size += sum(text_size(key) + text_size(value) + 6 for key, value in record.items()) + 2
            if size > limit:
                raise ValueTooLarge(limit)
            rows.append(record)
    except csv.Error as error:
        raise DocumentError(f"is not valid CSV: {error}") from None
    return rows


def pdf_text(content: bytes, *, limit: int, deadline: float) -> str:
    """The pages' text joined by blank lines, as Langflow's ``read_pdf_file``."""
    from pypdf import PdfReader

    parts: list[str] = []
    size = 0
    try:
        reader = PdfReader(io.BytesIO(content))
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError("is an encrypted PDF")
        for page in reader.pages:
            if time.monotonic() > deadline:
                raise TimeoutError
            text = page.extract_text() or ""
            size += text_size(text) + (len(PAGE_SEPARATOR) if parts else 0)
            if size > limit:
                raise ValueTooLarge(limit)
            parts.append(text)
    except (DocumentError, ValueTooLarge, TimeoutError, MemoryError):
        raise
    except Exception as error:  # noqa: BLE001 - a malformed PDF raises many kinds of errors in pypdf
        raise DocumentError(f"is not a readable PDF ({type(error).__name__})") from None
    return PAGE_SEPARATOR.join(parts)


def docx_text(content: bytes, *, limit: int, max_unpacked: int) -> str:
    """The paragraphs' text joined by blank lines (Langflow's ``read_docx_file``), then each table's
    rows, cells separated by tabs."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            # zipfile never unpacks more than a member declares, so the declared sizes bind.
            unpacked = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, ValueError, EOFError):
        raise DocumentError("is not a readable DOCX (not a zip archive)") from None
    if unpacked > max_unpacked:
        raise DocumentError(f"unpacks to more than {max_unpacked:,} bytes")

    import docx

    parts: list[str] = []
    size = 0

    def add(text: str) -> None:
        nonlocal size
        size += text_size(text) + (2 if parts else 0)
        if size > limit:
            raise ValueTooLarge(limit)
        parts.append(text)

    try:
        document = docx.Document(io.BytesIO(content))
        for paragraph in document.paragraphs:
            add(paragraph.text)
        for table in document.tables:
            add("\n".join("\t".join(cell.text for cell in row.cells) for row in table.rows))
    except (ValueTooLarge, MemoryError):
        raise
    except Exception as error:  # noqa: BLE001 - python-docx and lxml raise many kinds of errors
        raise DocumentError(f"is not a readable DOCX ({type(error).__name__})") from None
    return "\n\n".join(parts)
