"""Fixtures for the files tests: a storage of their own, keys, and small PDF and DOCX files made here."""

import io
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile


@pytest.fixture(autouse=True)
def files_storage(settings, tmp_path):
    """Each test stores its files in a fresh directory (created by the storage, as in production)."""
    location = tmp_path / "files"
    settings.STORAGES = {
        **settings.STORAGES,
        "files": {**settings.STORAGES["files"], "OPTIONS": {**settings.STORAGES["files"]["OPTIONS"],
                                                             "location": str(location)}},
    }
    return location


@pytest.fixture
def key(user, make_key):
    return make_key(user)[1]


@pytest.fixture
def other_key(other_user, make_key):
    return make_key(other_user)[1]


def upload(api_client, key, name="notes.txt", content=b"hello", **extra):
    """POST /api/v2/files with one file; return the response."""
    headers = {"HTTP_X_API_KEY": key} if key else {}
    return api_client.post("/api/v2/files", {"file": SimpleUploadedFile(name, content)}, format="multipart",
                           **headers, **extra)


def make_pdf(*pages: str) -> bytes:
    """A valid PDF with one page per text, in Helvetica, its streams compressed (as real ones are)."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", None, b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for text in pages:
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = zlib.compress(f"BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET".encode("latin-1"))
        objects.append(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream")
        content_id = len(objects)
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
                       b"/Contents %d 0 R >>" % content_id)
        kids.append(len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % kid for kid in kids), len(kids))
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def make_docx(*paragraphs: str, table: list[list[str]] | None = None) -> bytes:
    import docx

    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for row, values in zip(grid.rows, table, strict=True):
            for cell, value in zip(row.cells, values, strict=True):
                cell.text = value
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()
