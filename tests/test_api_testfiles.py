"""The test files API: the shipped samples, uploads (every refusal), overwrite, delete, and running an upload."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from conftest import ROOT

QUICK = b"def test_quick():\n    assert sum(range(10)) == 45\n"
SAMPLES = sorted(p.name for p in (ROOT / "sample_tests").glob("test_*.py")) + ["validation/test_target.py"]


def error_code(response) -> str:
    assert response.is_json, response.data[:200]
    body = response.json["error"]
    assert set(body) == {"code", "message", "fields"} and body["message"]
    return body["code"]


def upload(client, name="test_quick.py", body=QUICK, directory="smoke", **form):
    return client.post("/api/v1/test-files", data={"directory": directory, "file": (io.BytesIO(body), name), **form},
                       content_type="multipart/form-data")


def listing(client) -> dict[str, dict]:
    response = client.get("/api/v1/test-files")
    assert response.status_code == 200
    return {entry["path"]: entry for entry in response.json}


def uploaded_paths(client) -> list[str]:
    return [path for path, entry in listing(client).items() if entry["uploaded"]]


def stored(app, path: str) -> bytes | None:
    """The bytes the database holds for an upload (every host reads them there), or None."""
    from webapp.extensions import db
    from webapp.models import UploadRow

    with app.app_context():
        row = db.session.get(UploadRow, path)
        return row.content if row else None


def store_ownerless(app, path: str, content: bytes) -> None:
    """An upload with no owner, as revision 0006 imports a file from before accounts."""
    import hashlib

    from webapp.extensions import db
    from webapp.models import UploadRow

    with app.app_context():
        db.session.add(UploadRow(path=path, owner=None, content=content, size=len(content),
                                 sha256=hashlib.sha256(content).hexdigest()))
        db.session.commit()


def test_the_shipped_samples_are_listed_read_only_with_their_sizes(client):
    response = client.get("/api/v1/test-files")
    assert response.status_code == 200
    entries = response.json
    assert [e["path"] for e in entries] == [f"sample_tests/{name}" for name in SAMPLES]
    for entry in entries:
        assert set(entry) == {"path", "directory", "size", "uploaded"}
        assert entry["directory"] == entry["path"].rsplit("/", 1)[0] and entry["uploaded"] is False
        assert entry["size"] == (ROOT / entry["path"]).stat().st_size


def test_an_upload_is_201_listed_at_once_grouped_by_its_directory_and_runs(client, work):
    response = upload(client)
    assert response.status_code == 201, response.json
    assert response.json == {"path": "uploads/smoke/test_quick.py", "directory": "uploads/smoke",
                             "size": len(QUICK), "uploaded": True, "owner": "admin"}
    assert listing(client)["uploads/smoke/test_quick.py"] == response.json  # who uploaded it is listed too
    assert upload(client, "other_test.py", directory="uploads/smoke").status_code == 201  # same directory, prefixed
    assert upload(client, directory="team-7_b").status_code == 201
    paths = list(listing(client))
    assert paths[-3:] == ["uploads/smoke/other_test.py", "uploads/smoke/test_quick.py", "uploads/team-7_b/test_quick.py"]
    assert all(p.startswith("sample_tests/") for p in paths[:-3])  # sorted by directory, then name

    run = client.post("/api/v1/runs", json={"environment_id": 1, "test_files": ["uploads/smoke/test_quick.py"]})
    assert run.status_code == 201, run.json
    work()
    done = client.get(f"/api/v1/runs/{run.json['id']}").json
    assert done["state"] == "success"
    assert done["tests"][0]["nodeid"] == "uploads/smoke/test_quick.py::test_quick"


def test_uploads_live_in_the_database_not_on_the_web_host_s_disk(app, client):
    assert upload(client).status_code == 201
    assert stored(app, "uploads/smoke/test_quick.py") == QUICK
    assert not (Path(app.config["DATA_DIR"]) / "uploads").exists()
    folder = Path(app.config["DATA_DIR"]) / "uploads" / "by-hand"
    folder.mkdir(parents=True)
    (folder / "test_dropped.py").write_bytes(QUICK)  # a file on one host's disk is no upload: never listed
    assert uploaded_paths(client) == ["uploads/smoke/test_quick.py"]
    store_ownerless(app, "uploads/by-hand/test_other.py", QUICK)  # what another web host stored: listed at once
    assert uploaded_paths(client) == ["uploads/by-hand/test_other.py", "uploads/smoke/test_quick.py"]


SYNTAX_ERROR = b"def test_a():\n    assert True\n\ndef test_b(:\n    pass\n"
BAD_INDENT = b"def test_a():\npass\n"


@pytest.mark.parametrize("name, directory, body, field, message", [
    ("conftest.py", "smoke", QUICK, "file", "conftest.py cannot be uploaded"),
    ("pytest.ini", "smoke", b"[pytest]\n", "file", "Config files"),
    ("setup.cfg", "smoke", b"[tool:pytest]\n", "file", "Config files"),
    ("pyproject.toml", "smoke", b"[tool.pytest.ini_options]\n", "file", "Config files"),
    ("tox.ini", "smoke", b"[pytest]\n", "file", "Config files"),
    ("../test_escape.py", "smoke", QUICK, "file", "may not contain '..'"),
    ("test_..py", "smoke", QUICK, "file", "may not contain '..'"),
    ("/tmp/test_abs.py", "smoke", QUICK, "file", "Absolute paths are not allowed"),
    ("sub/test_nested.py", "smoke", QUICK, "file", "path separators"),
    ("helpers.py", "smoke", QUICK, "file", "named test_*.py or *_test.py"),
    ("test_quick.txt", "smoke", QUICK, "file", "named test_*.py or *_test.py"),
    ("test quick.py", "smoke", QUICK, "file", "may only use A–Z"),
    ("test_é.py", "smoke", QUICK, "file", "may only use A–Z"),
    ("test_a.b.py", "smoke", QUICK, "file", "Only the .py may have a dot"),
    ("test_quick.py", "Smoke", QUICK, "directory", "Directory names use a–z, 0–9, _ and -"),
    ("test_quick.py", "x" * 41, QUICK, "directory", "at most 40 characters"),
    ("test_quick.py", "../etc", QUICK, "directory", "Directory names use"),
    ("test_quick.py", "uploads/../../x", QUICK, "directory", "Directory names use"),
    ("test_quick.py", "/tmp", QUICK, "directory", "Directory names use"),
    ("test_quick.py", "a/b", QUICK, "directory", "Directory names use"),
    ("test_quick.py", "sample_tests", QUICK, "directory", "read-only"),
    ("test_quick.py", "", QUICK, "directory", "Choose a directory"),
    ("test_quick.py", "smoke", SYNTAX_ERROR, "file", "Not valid Python: invalid syntax on line 4."),
    ("test_quick.py", "smoke", BAD_INDENT, "file", "on line 2"),
    ("test_quick.py", "smoke", b"def test_x():\n    assert '\xff' \n", "file", "not UTF-8"),
    ("test_quick.py", "smoke", b"x = 1\0\n", "file", "null bytes"),
])
def test_refused_uploads_are_422_on_their_field_and_store_nothing(app, client, name, directory, body, field, message):
    response = upload(client, name, body, directory)
    assert response.status_code == 422
    assert error_code(response) == "validation_error"
    assert any(message in m for m in response.json["error"]["fields"][field]), response.json
    assert uploaded_paths(client) == []
    assert uploaded_paths(client) == []


@pytest.mark.parametrize("raw_name, message", [
    (rb"sub\\test_nested.py", "path separators"),
    (rb"C:\\temp\\test_abs.py", "Absolute paths are not allowed"),
    (rb"\\\\server\\share\\test_unc.py", "Absolute paths are not allowed"),
])
def test_windows_paths_as_a_browser_sends_them_are_refused(client, raw_name, message):
    """The body is written by hand: Werkzeug reads a backslash in a quoted file name as an escape."""
    body = (b'--XX\r\nContent-Disposition: form-data; name="directory"\r\n\r\nsmoke\r\n'
            b'--XX\r\nContent-Disposition: form-data; name="file"; filename="' + raw_name + b'"\r\n'
            b"Content-Type: text/x-python\r\n\r\n" + QUICK + b"\r\n--XX--\r\n")
    response = client.post("/api/v1/test-files", data=body, content_type="multipart/form-data; boundary=XX")
    assert response.status_code == 422
    assert any(message in m for m in response.json["error"]["fields"]["file"]), response.json
    assert uploaded_paths(client) == []


def test_a_missing_file_or_directory_field_is_422(client):
    response = client.post("/api/v1/test-files", data={"directory": "smoke"}, content_type="multipart/form-data")
    assert response.status_code == 422 and "file" in response.json["error"]["fields"]
    response = client.post("/api/v1/test-files", data={"file": (io.BytesIO(QUICK), "test_quick.py")},
                           content_type="multipart/form-data")
    assert response.status_code == 422 and "directory" in response.json["error"]["fields"]


def test_at_most_one_mebibyte_is_accepted(client):
    padding = b"# " + b"x" * 100 + b"\n"
    exact = QUICK + padding * ((1024 * 1024 - len(QUICK)) // len(padding))
    exact += b"#" * (1024 * 1024 - len(exact) - 1) + b"\n"
    assert len(exact) == 1024 * 1024
    ok = upload(client, "test_big.py", exact)
    assert ok.status_code == 201 and ok.json["size"] == 1024 * 1024
    too_big = upload(client, "test_bigger.py", exact + b"\n")
    assert too_big.status_code == 413
    assert error_code(too_big) == "too_large" and "1 MiB" in too_big.json["error"]["message"]
    huge = upload(client, "test_huge.py", exact * 3)  # over the request limit: refused before it is read
    assert huge.status_code == 413 and error_code(huge) == "too_large"
    assert uploaded_paths(client) == ["uploads/smoke/test_big.py"]


def test_an_existing_name_is_409_unless_overwrite_is_true(app, client):
    assert upload(client).status_code == 201
    changed = QUICK + b"\n\ndef test_more():\n    pass\n"
    for overwrite in ({}, {"overwrite": "false"}):
        response = upload(client, body=changed, **overwrite)
        assert response.status_code == 409 and error_code(response) == "file_exists"
        assert "file" in response.json["error"]["fields"]
    assert stored(app, "uploads/smoke/test_quick.py") == QUICK
    response = upload(client, body=changed, overwrite="true")
    assert response.status_code == 201 and response.json["size"] == len(changed)
    assert stored(app, "uploads/smoke/test_quick.py") == changed
    assert listing(client)["uploads/smoke/test_quick.py"]["size"] == len(changed)


def test_a_byte_order_mark_is_accepted(client):
    response = upload(client, body=b"\xef\xbb\xbf" + QUICK)
    assert response.status_code == 201


def test_delete_removes_an_upload_which_can_then_no_longer_be_run(app, client):
    upload(client)
    upload(client, "test_other.py")
    assert client.delete("/api/v1/test-files/uploads/smoke/test_quick.py").status_code == 204
    assert uploaded_paths(client) == ["uploads/smoke/test_other.py"]
    assert stored(app, "uploads/smoke/test_quick.py") is None
    response = client.post("/api/v1/runs", json={"environment_id": 1, "test_files": ["uploads/smoke/test_quick.py"]})
    assert response.status_code == 422 and "test_files" in response.json["error"]["fields"]
    again = client.delete("/api/v1/test-files/uploads/smoke/test_quick.py")
    assert again.status_code == 404 and error_code(again) == "not_found"
    assert client.delete("/api/v1/test-files/uploads/smoke/test_other.py").status_code == 204
    assert uploaded_paths(client) == []
    assert upload(client).status_code == 201  # the emptied directory can be used again


@pytest.mark.parametrize("path", [
    "uploads/smoke/test_nope.py", "uploads/../sample_tests/test_passing.py", "sample_tests/test_nope.py",
    "uploads/smoke", "nothing/test_quick.py", "uploads/smoke/../../webapp/config.py",
])
def test_deleting_something_unknown_is_404_and_touches_nothing(client, path):
    upload(client)
    response = client.delete(f"/api/v1/test-files/{path}")
    assert response.status_code == 404 and error_code(response) == "not_found"
    assert uploaded_paths(client) == ["uploads/smoke/test_quick.py"]
    assert "sample_tests/test_passing.py" in listing(client)


def test_shipped_samples_are_read_only(client):
    response = client.delete("/api/v1/test-files/sample_tests/test_passing.py")
    assert response.status_code == 403 and error_code(response) == "read_only"
    assert (ROOT / "sample_tests" / "test_passing.py").exists()
    assert "sample_tests/test_passing.py" in listing(client)


# --- owners --------------------------------------------------------------------------------------------

CHANGED = QUICK + b"\n\ndef test_more():\n    pass\n"


def test_an_upload_records_who_uploaded_it(client, as_role):
    olga = as_role("operator", "olga")
    response = upload(olga)
    assert response.status_code == 201 and response.json["owner"] == "olga"
    assert upload(olga, body=CHANGED, overwrite="true").json["owner"] == "olga"  # replacing one's own
    assert upload(client, body=QUICK, overwrite="true").json["owner"] == "olga"  # an admin's replace keeps it


def test_another_operator_may_neither_replace_nor_delete_an_upload(app, client, as_role):
    olga, pete = as_role("operator", "olga"), as_role("operator", "pete")
    assert upload(olga).status_code == 201
    replaced = upload(pete, body=CHANGED, overwrite="true")
    assert replaced.status_code == 403 and error_code(replaced) == "forbidden"
    assert stored(app, "uploads/smoke/test_quick.py") == QUICK
    refused = upload(pete, body=CHANGED)  # without overwrite: the name is simply taken
    assert refused.status_code == 409 and error_code(refused) == "file_exists"
    deleted = pete.delete("/api/v1/test-files/uploads/smoke/test_quick.py")
    assert deleted.status_code == 403 and error_code(deleted) == "forbidden"
    assert stored(app, "uploads/smoke/test_quick.py") == QUICK and uploaded_paths(client) == ["uploads/smoke/test_quick.py"]
    assert upload(pete, "test_pete.py").status_code == 201  # the same directory is shared
    assert olga.delete("/api/v1/test-files/uploads/smoke/test_pete.py").status_code == 403
    assert olga.delete("/api/v1/test-files/uploads/smoke/test_quick.py").status_code == 204
    assert uploaded_paths(client) == ["uploads/smoke/test_pete.py"]


def test_an_admin_may_replace_and_delete_anyone_s_upload(app, client, as_role):
    olga = as_role("operator", "olga")
    assert upload(olga).status_code == 201
    assert upload(client, body=CHANGED, overwrite="true").status_code == 201
    assert stored(app, "uploads/smoke/test_quick.py") == CHANGED
    assert client.delete("/api/v1/test-files/uploads/smoke/test_quick.py").status_code == 204
    assert uploaded_paths(client) == []
    again = upload(as_role("operator", "pete"))  # the path is free again: now pete's
    assert again.status_code == 201 and again.json["owner"] == "pete"
    assert olga.delete("/api/v1/test-files/uploads/smoke/test_quick.py").status_code == 403


def test_a_file_nobody_uploaded_through_the_app_is_the_admins_to_replace_or_delete(app, client, as_role):
    store_ownerless(app, "uploads/by-hand/test_dropped.py", QUICK)
    olga = as_role("operator", "olga")
    assert upload(olga, "test_dropped.py", CHANGED, "by-hand", overwrite="true").status_code == 403
    assert olga.delete("/api/v1/test-files/uploads/by-hand/test_dropped.py").status_code == 403
    assert stored(app, "uploads/by-hand/test_dropped.py") == QUICK
    assert client.delete("/api/v1/test-files/uploads/by-hand/test_dropped.py").status_code == 204


def test_a_viewer_may_list_but_not_upload_or_delete(client, as_role):
    viewer = as_role("viewer")
    assert upload(client).status_code == 201
    response = upload(viewer, "test_viewer.py")
    assert response.status_code == 403 and error_code(response) == "forbidden"
    response = viewer.delete("/api/v1/test-files/uploads/smoke/test_quick.py")
    assert response.status_code == 403 and error_code(response) == "forbidden"
    assert uploaded_paths(viewer) == ["uploads/smoke/test_quick.py"]


@pytest.mark.parametrize("body, content_type", [
    (b'{"directory": "smoke"}', "application/json"), (b"directory=smoke", "application/x-www-form-urlencoded"),
])
def test_an_upload_that_is_not_multipart_is_415(client, body, content_type):
    response = client.post("/api/v1/test-files", data=body, content_type=content_type)
    assert response.status_code == 415 and error_code(response) == "unsupported_media_type"
    assert uploaded_paths(client) == []

