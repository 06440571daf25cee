"""Langflow's /api/v2/files: upload, list, download, rename, delete; owners, keys, limits, names."""

import os
import stat
import uuid
import warnings

import pytest
from asgiref.sync import async_to_sync
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import AsyncClient, Client

from apikeys.access import KeyAccess
from files.models import UserFile
from flows import services as flow_services

from .conftest import upload

pytestmark = pytest.mark.django_db


def download(api_client, key, file_id):
    return api_client.get(f"/api/v2/files/{file_id}", HTTP_X_API_KEY=key)


def body_of(response) -> bytes:
    return b"".join(response)


def test_upload_list_download_delete_round_trip(api_client, user, key, files_storage,
                                                django_capture_on_commit_callbacks):
    response = upload(api_client, key, "Report.PDF", b"%PDF- not really")
    assert response.status_code == 201
    created = response.json()
    file_id = uuid.UUID(created["id"])
    assert created == {"id": str(file_id), "name": "Report", "path": f"{user.pk}/{file_id}.pdf",
                       "size": 16, "provider": None}
    assert (files_storage / str(user.pk) / f"{file_id}.pdf").read_bytes() == b"%PDF- not really"

    listed = api_client.get("/api/v2/files", HTTP_X_API_KEY=key)
    assert listed.status_code == 200
    [entry] = listed.json()
    assert entry["id"] == str(file_id) and entry["user_id"] == str(user.pk)
    assert {"name", "path", "size", "provider", "created_at", "updated_at"} <= set(entry)
    assert api_client.get("/api/v2/files/", HTTP_X_API_KEY=key).json() == listed.json()

    got = download(api_client, key, file_id)
    assert got.status_code == 200
    assert body_of(got) == b"%PDF- not really"
    assert got["Content-Type"] == "application/octet-stream"
    assert got["Content-Disposition"] == 'attachment; filename="Report.pdf"'
    assert got["Content-Length"] == "16"
    assert got["X-Content-Type-Options"] == "nosniff"

    with django_capture_on_commit_callbacks(execute=True):
        deleted = api_client.delete(f"/api/v2/files/{file_id}", HTTP_X_API_KEY=key)
    assert deleted.status_code == 200
    assert deleted.json() == {"detail": "File Report deleted successfully"}
    assert not (files_storage / str(user.pk) / f"{file_id}.pdf").exists()
    assert download(api_client, key, file_id).status_code == 404
    assert api_client.get("/api/v2/files", HTTP_X_API_KEY=key).json() == []


def test_under_asgi_a_download_streams_in_chunks_read_off_the_event_loop(api_client, key):
    content = os.urandom(600_000)
    created = upload(api_client, key, "blob.bin", content).json()

    async def download_asynchronously():
        response = await AsyncClient().get(f"/api/v2/files/{created['id']}", headers={"x-api-key": key})
        return response, [chunk async for chunk in response]

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Django warns when it must read a file's iterator whole
        response, chunks = async_to_sync(download_asynchronously)()
    assert response.status_code == 200 and response.is_async
    assert [len(chunk) for chunk in chunks] == [262_144, 262_144, 75_712]
    assert b"".join(chunks) == content


def test_stored_files_and_their_folders_are_private(api_client, user, key, files_storage):
    created = upload(api_client, key).json()
    stored = files_storage / created["path"]
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(files_storage.stat().st_mode) == 0o700


def test_a_taken_name_is_numbered_as_in_langflow(api_client, key):
    names = [upload(api_client, key, "data.csv", b"a,b\n").json()["name"] for _ in range(3)]
    assert names == ["data", "data (1)", "data (2)"]
    assert upload(api_client, key, "data.txt", b"x").json()["name"] == "data (3)"  # a name is unique whatever the type


def test_delete_all_deletes_only_the_callers_files(api_client, user, key, other_key, files_storage,
                                                   django_capture_on_commit_callbacks):
    mine = [upload(api_client, key, f"f{i}.txt").json() for i in range(2)]
    theirs = upload(api_client, other_key, "theirs.txt").json()
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.delete("/api/v2/files", HTTP_X_API_KEY=key)
    assert response.status_code == 200 and response.json() == {"message": "All files deleted successfully"}
    assert not any((files_storage / file["path"]).exists() for file in mine)
    assert (files_storage / theirs["path"]).exists()
    assert [file["id"] for file in api_client.get("/api/v2/files", HTTP_X_API_KEY=other_key).json()] == [theirs["id"]]


def test_rename_keeps_the_extension_and_refuses_a_taken_name(api_client, key):
    first = upload(api_client, key, "a.md").json()
    upload(api_client, key, "b.md")
    renamed = api_client.put(f"/api/v2/files/{first['id']}?name=c.txt", HTTP_X_API_KEY=key)
    assert renamed.status_code == 200 and renamed.json()["name"] == "c"
    got = download(api_client, key, first["id"])
    assert got["Content-Disposition"] == 'attachment; filename="c.md"'
    taken = api_client.put(f"/api/v2/files/{first['id']}?name=b", HTTP_X_API_KEY=key)
    assert taken.status_code == 400 and "already" in taken.json()["detail"]


# --- Owners ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["get", "delete", "put"])
def test_another_users_file_is_not_found(api_client, key, other_key, method, files_storage):
    theirs = upload(api_client, other_key, "secret.txt", b"theirs").json()
    response = getattr(api_client, method)(f"/api/v2/files/{theirs['id']}?name=x", HTTP_X_API_KEY=key)
    assert response.status_code == 404
    assert response.json() == {"detail": "File not found"}
    assert (files_storage / theirs["path"]).read_bytes() == b"theirs"
    assert UserFile.objects.get(pk=theirs["id"]).name == "secret"


@pytest.mark.parametrize("file_id", ["not-a-uuid", str(uuid.uuid4()), "..%2E%2E"])
def test_unknown_ids_are_not_found(api_client, key, file_id):
    response = download(api_client, key, file_id)
    assert response.status_code == 404 and response.json() == {"detail": "File not found"}


def test_a_path_in_place_of_an_id_reaches_no_file(api_client, key):
    response = download(api_client, key, "..%2F..%2Flangflow_site%2Fsettings.py")
    assert response.status_code == 404


def test_without_credentials_nothing_is_answered(api_client, key):
    upload(api_client, key)
    assert api_client.get("/api/v2/files").status_code == 403
    assert upload(api_client, None).status_code == 403
    assert UserFile.objects.count() == 1


def test_a_signed_in_session_works_with_its_csrf_token(user):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    refused = browser.post("/api/v2/files", {"file": SimpleUploadedFile("a.txt", b"a")})
    assert refused.status_code == 403  # no CSRF token
    browser.get("/api-keys/")  # sets the CSRF cookie
    token = browser.cookies["csrftoken"].value
    accepted = browser.post("/api/v2/files", {"file": SimpleUploadedFile("a.txt", b"a")}, HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 201
    assert browser.get("/api/v2/files").json()[0]["name"] == "a"


# --- Key permissions ---------------------------------------------------------------------------------

def _key(make_key, user, **access):
    return make_key(user, access=KeyAccess(**access))[1]


def test_reading_needs_read_and_changing_needs_write(api_client, user, make_key, key):
    existing = upload(api_client, key).json()
    reader = _key(make_key, user, permissions=("read",))
    writer = _key(make_key, user, permissions=("write",))
    runner = _key(make_key, user, permissions=("run",))

    assert api_client.get("/api/v2/files", HTTP_X_API_KEY=reader).status_code == 200
    assert download(api_client, reader, existing["id"]).status_code == 200
    for refused in (upload(api_client, reader), api_client.delete(f"/api/v2/files/{existing['id']}",
                                                                  HTTP_X_API_KEY=reader)):
        assert refused.status_code == 403
        assert refused.json() == {"detail": "This API key lacks the 'write' permission"}

    assert upload(api_client, writer).status_code == 201
    listing = api_client.get("/api/v2/files", HTTP_X_API_KEY=writer)
    assert listing.status_code == 403 and listing.json() == {"detail": "This API key lacks the 'read' permission"}
    assert download(api_client, runner, existing["id"]).status_code == 403
    assert api_client.delete("/api/v2/files", HTTP_X_API_KEY=runner).status_code == 403
    assert UserFile.objects.filter(pk=existing["id"]).exists()


def test_a_key_limited_to_chosen_flows_reads_files_but_cannot_change_them(api_client, user, make_key, key):
    flow = flow_services.create_flow(owner=user, name="One", data={"nodes": [], "edges": []})
    limited = _key(make_key, user, all_flows=False, flow_ids=(str(flow.pk),))
    existing = upload(api_client, key).json()
    assert download(api_client, limited, existing["id"]).status_code == 200
    refused = api_client.delete("/api/v2/files", HTTP_X_API_KEY=limited)
    assert refused.status_code == 403 and "limited to chosen flows" in refused.json()["detail"]
    assert upload(api_client, limited).status_code == 403
    assert UserFile.objects.count() == 1


# --- Limits -------------------------------------------------------------------------------------------

def test_a_file_over_the_upload_limit_is_refused_and_nothing_is_kept(api_client, key, settings, files_storage):
    settings.FILES_MAX_UPLOAD_BYTES = 1000
    assert upload(api_client, key, "ok.txt", b"x" * 1000).status_code == 201
    response = upload(api_client, key, "big.txt", b"x" * 1001)
    assert response.status_code == 413
    assert response.json() == {"detail": "The file is larger than FILES_MAX_UPLOAD_BYTES (1,000 bytes)."}
    assert list(UserFile.objects.values_list("name", flat=True)) == ["ok"]
    assert len(list(files_storage.rglob("*.txt"))) == 1


def test_a_body_declaring_far_more_than_the_limit_is_refused_before_it_is_parsed(api_client, key, settings):
    settings.FILES_MAX_UPLOAD_BYTES = 1000
    response = upload(api_client, key, "big.txt", b"x" * 200_000)
    assert response.status_code == 413
    assert "FILES_MAX_UPLOAD_BYTES" in response.json()["detail"]
    assert not UserFile.objects.exists()


def test_a_users_files_together_stay_within_the_quota(api_client, key, other_key, settings, files_storage):
    settings.FILES_MAX_USER_BYTES = 2500
    assert upload(api_client, key, "a.txt", b"x" * 1500).status_code == 201
    refused = upload(api_client, key, "b.txt", b"x" * 1001)
    assert refused.status_code == 413 and "FILES_MAX_USER_BYTES (2,500 bytes)" in refused.json()["detail"]
    assert upload(api_client, key, "c.txt", b"x" * 1000).status_code == 201  # exactly at the quota
    assert upload(api_client, other_key, "d.txt", b"x" * 2000).status_code == 201  # a quota per user
    assert len(list(files_storage.rglob("*.txt"))) == 3


def test_no_file_is_a_400(api_client, key):
    response = api_client.post("/api/v2/files", {"other": "value"}, format="multipart", HTTP_X_API_KEY=key)
    assert response.status_code == 400
    assert "'file' field" in response.json()["detail"]
    not_multipart = api_client.post("/api/v2/files", {"file": "x"}, format="json", HTTP_X_API_KEY=key)
    assert not_multipart.status_code == 415


def test_two_files_in_one_request_are_refused(api_client, key):
    response = api_client.post("/api/v2/files", {"file": SimpleUploadedFile("a.txt", b"a"),
                                                 "more": SimpleUploadedFile("b.txt", b"b")},
                               format="multipart", HTTP_X_API_KEY=key)
    assert response.status_code == 400 and "one file" in response.json()["detail"]
    assert not UserFile.objects.exists()


# --- Names -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("sent", "name", "extension"), [
    ("../../etc/passwd", "passwd", ""),
    ("..\\..\\windows\\win.ini", "win", ".ini"),
    ("C:\\Users\\me\\report.final.PDF", "report.final", ".pdf"),
    ("a\x00b\x1f\u202ec.txt", "abc", ".txt"),
    ('what?<is>"this"*.md', 'what__is__this__', ".md"),
    ("  spaced   out  .txt  ", "spaced out", ".txt"),
    (".env", ".env", ""),
    ("archive.tar.gz", "archive.tar", ".gz"),
    ("weird.ext-ension", "weird.ext-ension", ""),
    ("x" * 300 + ".txt", "x" * 200, ".txt"),
])
def test_names_are_cleaned_and_paths_are_made_by_the_server(api_client, user, key, files_storage, sent, name,
                                                            extension):
    response = upload(api_client, key, sent, b"content")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["name"] == name
    assert created["path"] == f"{user.pk}/{created['id']}{extension}"
    assert (files_storage / created["path"]).read_bytes() == b"content"
    assert [path.name for path in files_storage.rglob("*") if path.is_file()] == [f"{created['id']}{extension}"]


def raw_upload(api_client, key, filename: bytes, content=b"content"):
    """A multipart body written by hand, so that the file name reaches the server as sent."""
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + filename + b"\"\r\n"
            b"Content-Type: application/octet-stream\r\n\r\n" + content + b"\r\n--XyZ--\r\n")
    return api_client.generic("POST", "/api/v2/files", body, content_type="multipart/form-data; boundary=XyZ",
                              HTTP_X_API_KEY=key)


@pytest.mark.parametrize("sent", [b"...", b" . ", b"..", b"../..", b"a/..", b"\xe2\x80\xae.", b""])
def test_a_name_with_nothing_left_is_a_400(api_client, key, sent, files_storage):
    response = raw_upload(api_client, key, sent)
    assert response.status_code == 400, response.json()
    assert not UserFile.objects.exists()
    assert not files_storage.exists() or not any(files_storage.rglob("*"))


def test_a_raw_name_with_directories_is_stored_under_a_name_of_the_servers(api_client, user, key, files_storage):
    response = raw_upload(api_client, key, b"../../../../tmp/evil.sh")
    assert response.status_code == 201
    created = response.json()
    assert created["name"] == "evil" and created["path"] == f"{user.pk}/{created['id']}.sh"
    assert (files_storage / created["path"]).read_bytes() == b"content"
