"""The parsers behind the File component (flows.engine.documents): right text, bounded work."""

import io
import time
import zipfile

import pytest

from flows.engine import documents
from flows.engine.limits import ValueTooLarge

from .conftest import make_docx, make_pdf


def extract(extension, content, **kwargs):
    options = {"limit": 10**6, "deadline": time.monotonic() + 60, "max_unpacked": 10**8, **kwargs}
    return documents.extract_text(extension, content, **options)


def test_pdf_pages_are_joined_by_blank_lines():
    assert extract("pdf", make_pdf("One", "Two (2)", "Three")) == "One\n\nTwo (2)\n\nThree"


def test_a_pdf_stops_at_the_value_limit_page_by_page():
    content = make_pdf(*["z" * 100] * 50)
    with pytest.raises(ValueTooLarge):
        extract("pdf", content, limit=450)
    assert len(extract("pdf", content, limit=100 * 50 + 2 * 49)) == 100 * 50 + 2 * 49


def test_a_pdf_stops_at_the_deadline():
    with pytest.raises(TimeoutError):
        extract("pdf", make_pdf("late"), deadline=time.monotonic() - 1)


@pytest.mark.parametrize("content", [b"", b"%PDF-1.7\n", b"not a pdf at all", make_pdf("cut")[:60]])
def test_a_broken_pdf_is_a_document_error(content):
    with pytest.raises(documents.DocumentError, match="not a readable PDF"):
        extract("pdf", content)


def test_docx_paragraphs_and_tables():
    content = make_docx("Hello", "", "World", table=[["a", "b"], ["c", "d"]])
    assert extract("docx", content) == "Hello\n\n\n\nWorld\n\na\tb\nc\td"


def test_a_docx_that_would_unpack_to_too_much_is_refused_before_it_is_unpacked():
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"<" + b"a" * 5_000_000)
    assert len(bomb.getvalue()) < 20_000
    with pytest.raises(documents.DocumentError, match="unpacks to more than 1,000,000 bytes"):
        extract("docx", bomb.getvalue(), max_unpacked=1_000_000)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated", b"plain text"])
def test_a_broken_docx_is_a_document_error(content):
    with pytest.raises(documents.DocumentError, match="not a readable DOCX"):
        extract("docx", content)


def test_a_zip_that_is_no_docx_is_a_document_error():
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("hello.txt", "hi")
    with pytest.raises(documents.DocumentError, match="not a readable DOCX"):
        extract("docx", archive.getvalue())


def test_a_docx_stops_at_the_value_limit():
    with pytest.raises(ValueTooLarge):
        extract("docx", make_docx(*["w" * 100] * 20), limit=500)


def test_text_is_measured_against_the_limit():
    assert extract("txt", b"x" * 10, limit=10) == "x" * 10
    with pytest.raises(ValueTooLarge):
        extract("md", "é".encode() * 6, limit=11)  # 12 UTF-8 bytes


@pytest.mark.parametrize(("content", "problem"), [(b"{oops", "not valid JSON"), (b"[NaN]", "not valid JSON"),
                                                  (b"\xff\xfe", "not UTF-8 text")])
def test_bad_json_and_bad_text_are_document_errors(content, problem):
    with pytest.raises(documents.DocumentError, match=problem):
        extract("json", content)


def test_csv_rows_are_records_and_are_bounded():
    text = 'a,b\n1,"x, y"\n2\n3,4,5\n'
    assert documents.csv_rows(text, limit=10**6) == [{"a": "1", "b": "x, y"}, {"a": "2", "b": ""},
                                                     {"a": "3", "b": "4", "": "5"}]
    with pytest.raises(ValueTooLarge):
        documents.csv_rows("a\n" + "1\n" * 1000, limit=100)


def test_an_unknown_encoding_is_a_document_error():
    with pytest.raises(documents.DocumentError, match="not a known text encoding"):
        extract("txt", b"x", encoding="no-such-codec")
    assert extract("txt", "ü".encode("cp1252"), encoding="cp1252") == "ü"
