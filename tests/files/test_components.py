"""The File and Save File components in real runs (/api/v1/run), reading and writing the owner's files."""

import json

import pytest

from files.models import UserFile
from files.storage import file_storage
from flows import services as flow_services
from tests.flows.graphs import chat_in, chat_out, edge, flow_data, node

from .conftest import make_docx, make_pdf, upload

pytestmark = pytest.mark.django_db

FILE_FIELDS = {
    "path": "", "file_path": "", "file_path_str": "", "separator": "\n\n", "silent_errors": False,
    "ignore_unsupported_extensions": True, "text_encoding": "", "advanced_mode": False, "storage_location": "",
    "delete_server_file_after_processing": True, "markdown": False,
}
SAVE_FIELDS = {"input": "", "file_name": "saved", "local_format": "json", "append_mode": False, "file_format": "",
               "storage_location": [{"chosen": False, "icon": "hard-drive", "name": "Local", "selected": False}]}


def file_node(node_id="File-1", **values):
    return node(node_id, "File", "Read File", **{**FILE_FIELDS, **values})


def save_node(node_id="SaveToFile-1", **values):
    return node(node_id, "SaveToFile", "Write File", **{**SAVE_FIELDS, **values})


def make_flow(user, *items, name="Files"):
    return flow_services.create_flow(owner=user, name=name, data=flow_data(*items))


@pytest.fixture
def reader_flow(user):
    """File -> Chat Output."""
    return make_flow(user, file_node(), chat_out(), edge("File-1", "message", "ChatOutput-1", "input_value"))


def run(api_client, flow, key, tweaks=None, stream=False, **body):
    return api_client.post(f"/api/v1/run/{flow.pk}{'?stream=true' if stream else ''}",
                           {"input_value": "", "tweaks": tweaks or {}, **body}, format="json", HTTP_X_API_KEY=key)


def answer(response) -> str:
    assert response.status_code == 200, response.json()
    return response.json()["outputs"][0]["outputs"][0]["results"]["message"]["text"]


def read(api_client, flow, key, path, **fields):
    return run(api_client, flow, key, {"File-1": {"path": path, **fields}})


# --- Formats --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "content", "text"), [
    ("notes.txt", b"plain words\nline two", "plain words\nline two"),
    ("readme.md", "# Title\n\n*é*".encode(), "# Title\n\n*é*"),
    ("table.csv", b"name,age\nAda,36\n", "name,age\nAda,36\n"),
    ("data.json", b'{\n  "a": [1, 2],\n  "b": "\xc3\xa9"\n}', '{"a": [1, 2], "b": "é"}'),
    ("bom.txt", b"\xef\xbb\xbfwith a byte-order mark", "with a byte-order mark"),
    ("report.pdf", make_pdf("Revenue grew 12%", "Second page"), "Revenue grew 12%\n\nSecond page"),
    ("letter.docx", make_docx("Dear reader,", "Kind regards", table=[["Q1", "10"], ["Q2", "12"]]),
     "Dear reader,\n\nKind regards\n\nQ1\t10\nQ2\t12"),
])
def test_each_format_is_read(api_client, key, reader_flow, name, content, text):
    stored = upload(api_client, key, name, content).json()
    assert answer(read(api_client, reader_flow, key, stored["path"])) == text


def test_a_legacy_encoding_is_read_when_the_node_names_it(api_client, key, reader_flow):
    stored = upload(api_client, key, "old.txt", "café".encode("latin-1")).json()
    refused = read(api_client, reader_flow, key, stored["path"])
    assert refused.status_code == 422 and "text_encoding" in refused.json()["detail"]
    assert answer(read(api_client, reader_flow, key, stored["path"], text_encoding="latin-1")) == "café"
    unknown = read(api_client, reader_flow, key, stored["path"], text_encoding="klingon")
    assert unknown.status_code == 422 and unknown.json()["node_ids"] == ["File-1"]


@pytest.mark.parametrize("how", ["path", "id", "name", "owner/name", "list"])
def test_a_file_is_named_by_its_path_its_id_or_its_name(api_client, user, key, reader_flow, how):
    stored = upload(api_client, key, "Q3 report.txt", b"numbers").json()
    reference = {"path": stored["path"], "id": stored["id"], "name": "Q3 report.txt",
                 "owner/name": f"{user.pk}/Q3 report.txt", "list": [stored["path"]]}[how]
    assert answer(read(api_client, reader_flow, key, reference)) == "numbers"


def test_several_files_are_joined_by_the_separator(api_client, key, reader_flow):
    paths = [upload(api_client, key, f"{i}.txt", f"part {i}".encode()).json()["path"] for i in range(3)]
    assert answer(read(api_client, reader_flow, key, paths, separator=" | ")) == "part 0 | part 1 | part 2"


def test_a_file_reached_along_an_edge_is_read(api_client, user, key):
    flow = make_flow(user, chat_in(), file_node(), chat_out(),
                     edge("ChatInput-1", "message", "File-1", "file_path"),
                     edge("File-1", "message", "ChatOutput-1", "input_value"))
    stored = upload(api_client, key, "notes.txt", b"from an edge").json()
    assert answer(run(api_client, flow, key, input_value=stored["id"])) == "from an edge"


# --- Owners and missing files ----------------------------------------------------------------------------

@pytest.mark.parametrize("stream", [False, True])
def test_a_missing_file_is_a_422_naming_the_node_before_anything_runs(api_client, key, reader_flow, stream):
    response = run(api_client, reader_flow, key, {"File-1": {"path": "nowhere.pdf"}}, stream=stream)
    assert response.status_code == 422
    body = response.json()
    assert body["node_ids"] == ["File-1"]
    assert body["detail"].startswith("Node File-1: no file of yours is 'nowhere.pdf'")


@pytest.mark.parametrize("how", ["path", "id", "name"])
def test_another_users_file_is_never_read(api_client, key, other_key, reader_flow, how):
    theirs = upload(api_client, other_key, "secret.txt", b"not yours").json()
    reference = {"path": theirs["path"], "id": theirs["id"], "name": "secret.txt"}[how]
    response = read(api_client, reader_flow, key, reference)
    assert response.status_code == 422 and response.json()["node_ids"] == ["File-1"]
    assert "not yours" not in json.dumps(response.json())


def test_a_file_named_in_the_flow_but_fed_nothing_says_so(api_client, key, reader_flow):
    response = run(api_client, reader_flow, key)
    assert response.status_code == 422
    assert response.json()["detail"].startswith("Node File-1: 'path' names no file")


def test_silent_errors_skip_a_missing_file(api_client, key, reader_flow):
    stored = upload(api_client, key, "here.txt", b"still here").json()
    response = read(api_client, reader_flow, key, ["gone.txt", stored["path"]], silent_errors=True)
    assert answer(response) == "still here"


def test_unsupported_types_are_skipped_or_refused(api_client, key, reader_flow):
    image = upload(api_client, key, "photo.png", b"\x89PNG").json()
    text = upload(api_client, key, "notes.txt", b"words").json()
    assert answer(read(api_client, reader_flow, key, [image["path"], text["path"]])) == "words"
    refused = read(api_client, reader_flow, key, [image["path"], text["path"]], ignore_unsupported_extensions=False)
    assert refused.status_code == 422 and "'photo.png' is not a file type this server reads" in refused.json()["detail"]


@pytest.mark.parametrize(("field", "value"), [("advanced_mode", True),
                                              ("storage_location", [{"name": "AWS"}])])
def test_what_this_server_cannot_do_is_refused_by_name(api_client, key, reader_flow, field, value):
    stored = upload(api_client, key, "notes.txt", b"words").json()
    response = read(api_client, reader_flow, key, stored["path"], **{field: value})
    assert response.status_code == 422 and f"'{field}'" in response.json()["detail"]


def test_a_broken_pdf_is_a_422_naming_the_file(api_client, key, reader_flow):
    stored = upload(api_client, key, "broken.pdf", b"%PDF-1.4 this is not a pdf").json()
    response = read(api_client, reader_flow, key, stored["path"])
    assert response.status_code == 422
    assert "'broken.pdf' is not a readable PDF" in response.json()["detail"]


# --- Limits ---------------------------------------------------------------------------------------------

def test_a_text_larger_than_a_value_may_be_is_refused_before_it_is_read(api_client, key, reader_flow, settings):
    settings.FLOW_MAX_VALUE_BYTES = 1000
    stored = upload(api_client, key, "long.txt", b"x" * 1001).json()
    response = read(api_client, reader_flow, key, stored["path"])
    assert response.status_code == 422 and "FLOW_MAX_VALUE_BYTES" in response.json()["detail"]


def test_a_pdf_whose_text_outgrows_a_value_is_stopped(api_client, key, reader_flow, settings):
    stored = upload(api_client, key, "many.pdf", make_pdf(*["y" * 300] * 5)).json()
    settings.FLOW_MAX_VALUE_BYTES = 1000  # the file is larger than that: only its text counts
    response = read(api_client, reader_flow, key, stored["path"])
    assert response.status_code == 422 and "FLOW_MAX_VALUE_BYTES" in response.json()["detail"]


def test_a_document_larger_than_the_parse_limit_is_not_parsed(api_client, key, reader_flow, settings):
    stored = upload(api_client, key, "big.docx", make_docx("words")).json()
    settings.FILES_MAX_PARSE_BYTES = 1000
    response = read(api_client, reader_flow, key, stored["path"])
    assert response.status_code == 422
    assert response.json()["detail"] == ("Node File-1: 'big.docx' is larger than FILES_MAX_PARSE_BYTES "
                                         "(1,000 bytes).")


# --- Outputs: rows, JSON, paths -------------------------------------------------------------------------

def test_a_csv_as_rows_saved_as_a_new_csv(api_client, user, key):
    flow = make_flow(user, file_node(), save_node(file_name="copy", local_format="csv"), chat_out(),
                     edge("File-1", "dataframe", "SaveToFile-1", "input"),
                     edge("SaveToFile-1", "message", "ChatOutput-1", "input_value"))
    stored = upload(api_client, key, "people.csv", b'name,note\nAda,"likes, commas"\nAlan,\n').json()
    text = answer(run(api_client, flow, key, {"File-1": {"path": stored["path"]}}))
    copy = UserFile.objects.get(owner=user, name="copy")
    assert text == f"DataFrame saved successfully as 'copy.csv' at {copy.path}"
    with file_storage().open(copy.path) as handle:
        assert handle.read() == b'name,note\nAda,"likes, commas"\nAlan,\n'


def test_the_json_and_path_outputs(api_client, user, key):
    flow = make_flow(user, file_node(), save_node(local_format="json"), chat_out(), chat_out("ChatOutput-2"),
                     edge("File-1", "json", "SaveToFile-1", "input"),
                     edge("SaveToFile-1", "message", "ChatOutput-1", "input_value"),
                     edge("File-1", "path", "ChatOutput-2", "input_value"))
    stored = upload(api_client, key, "config.json", b'{"retries": 3, "hosts": ["a", "b"]}').json()
    response = run(api_client, flow, key, {"File-1": {"path": "config.json"}})
    assert response.status_code == 200, response.json()
    texts = [output["results"]["message"]["text"] for output in response.json()["outputs"][0]["outputs"]]
    assert stored["path"] in texts
    saved = UserFile.objects.get(owner=user, name="saved")
    with file_storage().open(saved.path) as handle:
        assert json.loads(handle.read()) == {"retries": 3, "hosts": ["a", "b"]}


# --- Save File -------------------------------------------------------------------------------------------

@pytest.fixture
def writer_flow(user):
    """Chat Input -> Save File -> Chat Output."""
    return make_flow(user, chat_in(), save_node(file_name="news-aggregated"), chat_out(),
                     edge("ChatInput-1", "message", "SaveToFile-1", "input"),
                     edge("SaveToFile-1", "message", "ChatOutput-1", "input_value"), name="Writer")


def content_of(user, name) -> bytes:
    with file_storage().open(UserFile.objects.get(owner=user, name=name).path) as handle:
        return handle.read()


@pytest.mark.parametrize(("fmt", "content"), [
    ("json", '{\n  "message": "Today: é"\n}'),
    ("txt", "Today: é"),
    ("markdown", "**Message:**\n\nToday: é"),
])
def test_a_message_is_saved_in_the_chosen_format(api_client, user, key, writer_flow, fmt, content):
    response = run(api_client, writer_flow, key, {"SaveToFile-1": {"local_format": fmt}}, input_value="Today: é")
    extension = {"markdown": "md"}.get(fmt, fmt)
    saved = UserFile.objects.get(owner=user)
    assert answer(response) == f"Message saved successfully as 'news-aggregated.{extension}' at {saved.path}"
    assert saved.filename == f"news-aggregated.{extension}"
    assert content_of(user, "news-aggregated").decode() == content
    listed = api_client.get("/api/v2/files", HTTP_X_API_KEY=key).json()
    assert [entry["path"] for entry in listed] == [saved.path]


def test_each_run_saves_a_new_file_unless_it_appends(api_client, user, key, writer_flow):
    for text in ("one", "two"):
        answer(run(api_client, writer_flow, key, input_value=text))
    assert sorted(UserFile.objects.values_list("name", flat=True)) == ["news-aggregated", "news-aggregated (1)"]
    for text in ("three", "four"):
        answer(run(api_client, writer_flow, key, {"SaveToFile-1": {"append_mode": True}}, input_value=text))
    assert UserFile.objects.count() == 2
    assert json.loads(content_of(user, "news-aggregated")) == [{"message": "one"}, {"message": "three"},
                                                               {"message": "four"}]


def test_a_format_a_message_cannot_take_is_refused(api_client, key, writer_flow):
    response = run(api_client, writer_flow, key, {"SaveToFile-1": {"local_format": "csv"}}, input_value="x")
    assert response.status_code == 422
    assert response.json()["detail"] == ("Node SaveToFile-1: 'local_format' is 'csv': a Message is saved as txt, "
                                         "json, markdown")
    assert not UserFile.objects.exists()


def test_saving_past_the_owners_quota_is_refused(api_client, user, key, writer_flow, settings):
    settings.FILES_MAX_USER_BYTES = 100
    upload(api_client, key, "filler.txt", b"x" * 90)
    response = run(api_client, writer_flow, key, input_value="y" * 50)
    assert response.status_code == 422
    assert response.json()["node_ids"] == ["SaveToFile-1"] and "FILES_MAX_USER_BYTES" in response.json()["detail"]
    assert list(UserFile.objects.values_list("name", flat=True)) == ["filler"]


def test_a_file_name_is_required_and_cleaned(api_client, user, key, writer_flow):
    empty = run(api_client, writer_flow, key, {"SaveToFile-1": {"file_name": " "}}, input_value="x")
    assert empty.status_code == 422 and "'file_name' is required" in empty.json()["detail"]
    answer(run(api_client, writer_flow, key, {"SaveToFile-1": {"file_name": "../../etc/cron.d/evil"}},
               input_value="x"))
    saved = UserFile.objects.get(owner=user)
    assert saved.name == "evil" and saved.path == f"{user.pk}/{saved.pk}.json"


def test_other_storage_locations_are_refused(api_client, key, writer_flow):
    response = run(api_client, writer_flow, key, {"SaveToFile-1": {"storage_location": [{"name": "Google Drive"}]}},
                   input_value="x")
    assert response.status_code == 422 and response.json()["node_ids"] == ["SaveToFile-1"]
    assert not UserFile.objects.exists()
