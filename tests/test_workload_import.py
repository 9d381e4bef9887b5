"""Bulk import of workloads: POST /api/v1/workloads/import (a CSV body, a multipart CSV file or a JSON list) and
the /workloads/import page (upload → preview → confirm). All or nothing; errors keyed rows.<n>.<field>."""
from __future__ import annotations

import io
import os
import re
import zlib

import pytest

from conftest import WORKLOAD, make_workload
from webapp.domain.imports import MAX_CELL_CHARS, MAX_IMPORT_ROWS, PREVIEW_ROWS, duplicate_messages, duplicate_rows

URL = "/api/v1/workloads/import"
HEADER = "ip,username,password,domain,volumes"
SECRET = "Sup3r-s3cret-pw"
GOOD = f"{HEADER}\n10.5.0.1,admin,{SECRET},CORP,C:\\:40;D:\\:100\n10.5.0.2,root,{SECRET},,C:\\:80\n"


def csv_post(client, text: str | bytes, **kwargs):
    return client.post(URL, data=text.encode() if isinstance(text, str) else text, content_type="text/csv", **kwargs)


def total(client) -> int:
    return client.get("/api/v1/workloads").json["total"]


def by_ip(client) -> dict[str, dict]:
    return {w["ip"]: w for w in client.get("/api/v1/workloads?per_page=100").json["items"]}


def refused_fields(response, status: int = 422) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    body = response.json["error"]
    assert set(body) == {"code", "message", "fields"} and body["message"]
    assert SECRET not in response.get_data(as_text=True)  # a password is never echoed back
    return body["fields"]


# --- the three ways in ---------------------------------------------------------------------------------

def test_a_csv_body_creates_every_row_with_its_storage_and_encrypted_password(app, client):
    response = csv_post(client, GOOD)
    assert response.status_code == 201 and response.json == {"created": 2}
    assert response.headers["Location"].endswith("/api/v1/workloads")
    stored = by_ip(client)
    assert stored["10.5.0.1"]["storage"] == [{"name": "C:\\", "size": 40}, {"name": "D:\\", "size": 100}]
    assert stored["10.5.0.1"]["credentials"] == {"username": "admin", "domain": "CORP", "password_set": True}
    assert stored["10.5.0.2"]["credentials"]["domain"] == "" and stored["10.5.0.2"]["storage"] == [
        {"name": "C:\\", "size": 80}]
    from webapp.extensions import db, vault
    from webapp.models import WorkloadRow

    with app.app_context():
        rows = db.session.query(WorkloadRow).all()
        assert all(SECRET not in r.password_enc and vault.decrypt(r.password_enc) == SECRET for r in rows)


def test_a_multipart_file_imports_the_same(client):
    response = client.post(URL, content_type="multipart/form-data",
                           data={"file": (io.BytesIO(GOOD.encode()), "machines.csv")})
    assert response.status_code == 201 and response.json == {"created": 2}
    assert set(by_ip(client)) == {"10.5.0.1", "10.5.0.2"}


def test_a_json_list_of_workload_inputs_imports_the_same(client):
    items = [{**WORKLOAD, "ip": f"10.6.0.{n}"} for n in range(1, 4)]
    response = client.post(URL, json=items)
    assert response.status_code == 201 and response.json == {"created": 3}
    assert by_ip(client)["10.6.0.3"]["storage"] == WORKLOAD["storage"]


def test_one_audit_entry_with_the_count_and_no_password(client):
    assert csv_post(client, GOOD).status_code == 201
    entries = [e for e in client.get("/api/v1/audit?per_page=100").json["items"] if e["action"].startswith("workload")]
    assert [(e["action"], e["details"]) for e in entries] == [("workload.import", {"count": 2})]
    assert SECRET not in client.get("/api/v1/audit?per_page=100").get_data(as_text=True)


@pytest.mark.parametrize("text", [
    "\ufeff" + GOOD,  # a BOM (Excel's "CSV UTF-8")
    GOOD.replace("\n", "\r\n"),  # CRLF
    "\n\r\n" + GOOD,  # blank lines before the header
    GOOD.replace(HEADER, "IP, UserName ,PASSWORD,Domain,VOLUMES"),  # header case and spaces
    GOOD.replace(HEADER, "volumes,domain,password,username,ip").replace(  # any column order
        f"10.5.0.1,admin,{SECRET},CORP,C:\\:40;D:\\:100", f"C:\\:40;D:\\:100,CORP,{SECRET},admin,10.5.0.1").replace(
        f"10.5.0.2,root,{SECRET},,C:\\:80", f"C:\\:80,,{SECRET},root,10.5.0.2"),
    f"{HEADER}\n 10.5.0.1 , admin ,{SECRET}, CORP , C:\\:40 ; d: : 100 ;\n\n10.5.0.2,root,{SECRET},,c:\\:80\n\n",
    f'{HEADER}\n"10.5.0.1","admin","{SECRET}","CORP","C:\\:40;D:\\:100"\n10.5.0.2,root,{SECRET},"",C:\\:80',
])
def test_the_csv_reader_is_tolerant(client, text):
    response = csv_post(client, text)
    assert response.status_code == 201 and response.json == {"created": 2}, response.json
    stored = by_ip(client)
    assert stored["10.5.0.1"]["storage"] == [{"name": "C:\\", "size": 40}, {"name": "D:\\", "size": 100}]
    assert stored["10.5.0.1"]["credentials"]["username"] == "admin" and stored["10.5.0.2"]["storage"][0]["size"] == 80


# --- refusals: every kind keyed by row and field, nothing stored ---------------------------------------------

ROW_ERRORS = [  # (the CSV's data lines, the field, a piece of its message)
    (["10.5.0.1,a,p,,C:\\:1", "300.1.1.1,a,p,,C:\\:1"], "rows.1.ip", "valid IPv4 or IPv6"),
    (["10.5.0.1,,p,,C:\\:1"], "rows.0.username", "Username is required"),
    (["10.5.0.1,a,,,C:\\:1"], "rows.0.password", "Password is required"),
    (["10.5.0.1,a,p,,C:\\:40;D:\\:lots"], "rows.0.volumes", "Volume 2: Size must be a whole number"),
    (["10.5.0.1,a,p,,C:\\:0"], "rows.0.volumes", "Volume 1: Size must be greater than 0"),
    (["10.5.0.1,a,p,,C:\\:40;c:\\:5"], "rows.0.volumes", "Volume 2: Volume C:\\ is listed twice"),
    (["10.5.0.1,a,p,,C:\\"], "rows.0.volumes", "has no size"),
    (["10.5.0.1,a,p,,C:\\:40;data"], "rows.0.volumes", "Volume 2 (data) has no size"),
    (["10.5.0.1,a,p,,C:\\:1", "10.5.0.2,a,p,C:\\:1"], "rows.1", "has 4 values; the header has 5"),
    (["10.5.0.1,a,p,,C:\\:1,extra"], "rows.0", "has 6 values"),
    (["10.5.0.1," + "u" * 300 + ",p,,C:\\:1"], "rows.0.username", "at most 255 characters"),
    (["10.5.0.1," + "u" * (MAX_CELL_CHARS + 1) + ",p,,C:\\:1"], "rows.0.username", "Too long"),
    (["10.5.0.1,a,p,,C:\\:1", "10.5.0.2,a,p,,C:\\:1", "10.5.0.01,a,p,,C:\\:1"], "rows.2.ip", "valid IPv4"),
]


@pytest.mark.parametrize("lines, field, message", ROW_ERRORS)
def test_a_bad_row_refuses_the_whole_file_keyed_by_row_and_field(client, lines, field, message):
    make_workload(client, ip="10.9.9.9")
    fields = refused_fields(csv_post(client, "\n".join([HEADER.replace("password", "Password"), *lines]) + "\n"))
    assert field in fields and any(message in m for m in fields[field]), fields
    assert total(client) == 1  # only the one made before


def test_rows_count_from_0_after_the_header_and_blank_lines_are_not_rows(client):
    text = f"{HEADER}\r\n\r\n10.5.0.1,a,p,,C:\\:1\r\n , , , , \r\n10.5.0.2,a,p,,C:\\:1\r\n10.5.0.3,a,p,,C:\\:0\r\n"
    assert set(refused_fields(csv_post(client, text))) == {"rows.2.volumes"}


def test_every_bad_row_is_reported_at_once_and_a_good_row_is_not_stored(client):
    text = "\n".join([HEADER, f"10.5.0.1,a,{SECRET},,C:\\:1", f"nope,,{SECRET},,C:\\:x", f"10.5.0.3,a,,,D:"])
    fields = refused_fields(csv_post(client, text))
    assert set(fields) == {"rows.1.ip", "rows.1.username", "rows.1.volumes", "rows.2.password", "rows.2.volumes"}
    assert total(client) == 0


@pytest.mark.parametrize("text, field, message", [
    ("", "file", "The file is empty"),
    ("  \r\n\n", "file", "The file is empty"),
    (HEADER + "\n", "file", "no rows"),
    ("ip,username,password,volumes\n10.5.0.1,a,p,C:\\:1\n", "header", "Missing column: domain"),
    (HEADER + ",notes\n10.5.0.1,a,p,,C:\\:1,x\n", "header", "Unknown column: notes"),
    (HEADER + ",ip\n10.5.0.1,a,p,,C:\\:1,x\n", "header", "Repeated column: ip"),
    ("10.5.0.1,a,p,,C:\\:1\n", "header", "Missing columns: ip, username, password, domain, volumes"),
    (HEADER + '\n10.5.0.1,"a\0b",p,,C:\\:1\n', "rows.0.username", "without NUL"),
])
def test_a_bad_file_is_refused_with_a_clear_message(client, text, field, message):
    fields = refused_fields(csv_post(client, text))
    assert any(message in m for m in fields[field]), fields
    assert total(client) == 0


def test_a_file_that_is_not_utf8_is_refused(client):
    fields = refused_fields(csv_post(client, f"{HEADER}\n10.5.0.1,Jos\xe9,p,,C:\\:1\n".encode("latin-1")))
    assert "not UTF-8" in fields["file"][0] and total(client) == 0


def test_a_field_beyond_the_csv_module_s_limit_is_a_422_not_a_500(client):
    fields = refused_fields(csv_post(client, f'{HEADER}\n10.5.0.1,"{"x" * 200_000}",p,,C:\\:1\n'))
    assert "Line 2 cannot be read as CSV: a value is too long" in fields["file"][0]


def test_more_rows_than_the_limit_is_413_and_a_request_over_2_mib_too(client):
    lines = [f"10.{n // 65536}.{n // 256 % 256}.{n % 256},u,p,,C:\\:1" for n in range(MAX_IMPORT_ROWS + 1)]
    fields = refused_fields(csv_post(client, "\n".join([HEADER, *lines])), 413)
    assert f"More than {MAX_IMPORT_ROWS} rows" in fields["file"][0]
    items = [{**WORKLOAD, "ip": "10.1.1.1"}] * (MAX_IMPORT_ROWS + 1)
    assert csv_post(client, "x" * (2 * 1024 * 1024 + 1)).status_code == 413
    assert refused_fields(client.post(URL, json=items), 413)["rows"]
    assert client.post(URL, json=items[:10]).status_code == 422  # the same IP ten times
    assert total(client) == 0


def test_a_formula_looking_value_is_stored_as_text_and_shown_escaped(client):
    text = f'{HEADER}\n10.5.0.1,"=HYPERLINK(""http://x"",""y"")",{SECRET},<b>x</b>,C:\\:1\n'
    preview = page_preview(client, text)
    page = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "=HYPERLINK(&#34;http://x&#34;,&#34;y&#34;)" in page
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert csv_post(client, text).status_code == 201
    assert by_ip(client)["10.5.0.1"]["credentials"]["username"] == '=HYPERLINK("http://x","y")'


# --- duplicates --------------------------------------------------------------------------------------------

def test_an_ip_twice_in_the_file_is_an_error_of_the_later_row_naming_the_earlier(client):
    text = "\n".join([HEADER, "10.5.0.1,a,p,,C:\\:1", "fd00::1,a,p,,C:\\:1", "10.5.0.3,a,p,,C:\\:1",
                      "FD00:0::1,a,p,,C:\\:1"])
    fields = refused_fields(csv_post(client, text))
    assert fields == {"rows.3.ip": ["Same IP address as row 1: each IP may appear once."]}
    assert total(client) == 0


def test_an_ip_already_stored_is_an_error_of_its_row(client):
    existing = make_workload(client, ip="10.5.0.2")
    fields = refused_fields(client.post(URL, json=[{**WORKLOAD, "ip": "10.5.0.1"}, {**WORKLOAD, "ip": "10.5.0.2"}]))
    assert fields == {"rows.1.ip": [f"10.5.0.2 is already a workload (id {existing['id']})."]}
    assert total(client) == 1


# --- JSON lists -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("body, field, message", [
    ({"ip": "10.5.0.1"}, "rows", "Send a JSON list"),
    ([], "rows", "the list is empty"),
    ([{**WORKLOAD, "ip": "10.5.0.1"}, "10.5.0.2"], "rows.1", "must be a workload object"),
    ([{**WORKLOAD, "storage": [{"name": "C:", "size": "x"}]}], "rows.0.storage.0.size", "whole number"),
    ([{**WORKLOAD, "credentials": {"username": "", "password": SECRET}}], "rows.0.credentials.username", "required"),
])
def test_a_bad_json_list_is_refused_keyed_by_the_input_paths(client, body, field, message):
    fields = refused_fields(client.post(URL, json=body))
    assert any(message in m for m in fields[field]), fields
    assert total(client) == 0


def test_malformed_json_is_400_and_another_body_type_is_415(client):
    assert client.post(URL, data="[{", content_type="application/json").json["error"]["code"] == "bad_json"
    refused = client.post(URL, data=GOOD, content_type="text/plain")
    assert refused.status_code == 415 and refused.json["error"]["code"] == "unsupported_media_type"
    form = client.post(URL, data={"ip": "10.5.0.1"}, content_type="application/x-www-form-urlencoded")
    assert form.status_code == 415
    assert refused_fields(client.post(URL, data={"other": "x"}, content_type="multipart/form-data"))["file"]
    assert total(client) == 0


# --- who may -----------------------------------------------------------------------------------------------

def test_a_viewer_is_refused_and_an_operator_may_import(client, as_role):
    viewer = as_role("viewer")
    assert csv_post(viewer, GOOD).status_code == 403
    assert viewer.get("/workloads/import").status_code == 403
    assert "Import from CSV" not in viewer.get("/workloads/").get_data(as_text=True)
    assert total(client) == 0
    operator = as_role("operator")
    assert "/workloads/import" in operator.get("/workloads/").get_data(as_text=True)
    assert csv_post(operator, GOOD).status_code == 201 and total(client) == 2


def test_a_thousand_rows_import_in_one_go(client):
    lines = [f"10.7.{n // 250}.{n % 250 + 1},user{n},pw{n},CORP,C:\\:40;D:\\:{n + 1}" for n in range(1000)]
    response = csv_post(client, "\n".join([HEADER, *lines]))
    assert response.status_code == 201 and response.json == {"created": 1000}
    assert total(client) == 1000
    assert client.get("/api/v1/workloads?per_page=1&page=1000").json["items"][0]["storage"][1] == {
        "name": "D:\\", "size": 1000}


# --- the page: upload → preview → confirm -----------------------------------------------------------------

def page_preview(client, text: str | bytes, name: str = "machines.csv"):
    data = text.encode() if isinstance(text, str) else text
    return client.post("/workloads/import", content_type="multipart/form-data",
                       data={"file": (io.BytesIO(data), name), "preview": "Preview"})


def sealed(page: str) -> str | None:
    found = re.search(r'name="content" type="hidden" value="([^"]+)"', page)
    return found.group(1) if found else None


def test_the_page_is_a_real_multipart_form(client):
    page = client.get("/workloads/import").get_data(as_text=True)
    assert re.search(r'<form method="post" action="/workloads/import" enctype="multipart/form-data"', page)
    assert 'type="file"' in page and 'name="preview"' in page and HEADER in page
    assert 'href="/workloads/import"' in client.get("/workloads/").get_data(as_text=True)


def test_preview_then_confirm_imports_and_the_preview_stores_nothing(client):
    preview = page_preview(client, GOOD)
    page = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "Preview: 2 rows" in page and "<code>10.5.0.2</code>" in page
    assert SECRET not in page and SECRET not in (sealed(page) or "")  # sealed: encrypted, not the text
    assert total(client) == 0
    done = client.post("/workloads/import", data={"content": sealed(page), "confirm": "Import 2 workloads"})
    assert done.status_code == 303 and done.headers["Location"].endswith("/workloads/")
    assert "Imported 2 workloads." in client.get("/workloads/").get_data(as_text=True)
    assert set(by_ip(client)) == {"10.5.0.1", "10.5.0.2"}


def test_the_preview_shows_each_error_beside_its_row_and_offers_no_confirm(client):
    make_workload(client, ip="10.5.0.2")
    lines = [f"10.5.1.{n},u,p,,C:\\:1" for n in range(1, 30)]
    lines[3], lines[25] = f"bad-ip,u,{SECRET},,C:\\:1", "10.5.1.200,u,,,C:\\:1"
    text = "\n".join([HEADER, *lines, "10.5.0.2,u,p,,C:\\:1"])
    preview = page_preview(client, text)
    page = preview.get_data(as_text=True)
    assert preview.status_code == 422 and sealed(page) is None and 'name="confirm"' not in page
    assert "Preview: 30 rows, 3 with errors" in page and f"The first {PREVIEW_ROWS} rows are shown" in page
    row3 = re.search(r'<td><code>bad-ip</code>(.*?)</td>', page, re.S).group(1)
    assert 'id="row-3-ip-error"' in row3 and "Enter a valid IPv4 or IPv6 address." in row3
    assert "Row 25, password: Password is required." in page  # after the preview: listed below it
    assert "Row 29, ip: 10.5.0.2 is already a workload" in page
    assert SECRET not in page and total(client) == 1


@pytest.mark.parametrize("text, status, message", [
    (b"", 422, "The file is empty"),
    ("ip,user\n1,2\n".encode(), 422, "Missing columns: username, password, domain, volumes"),
    (f"{HEADER}\n10.5.0.1,Jos\xe9,p,,C:\\:1\n".encode("latin-1"), 422, "not UTF-8"),
])
def test_a_bad_file_is_explained_beside_the_file_field(client, text, status, message):
    preview = page_preview(client, text)
    page = preview.get_data(as_text=True)
    assert preview.status_code == status
    field = re.search(r'<div class="field has-error">(.*?)</div>', page, re.S).group(1)
    assert 'id="file"' in field and message in field


def test_a_big_file_comes_back_whole_and_one_too_big_for_a_form_field_is_explained(client):
    lines = [f"10.8.{n // 250}.{n % 250 + 1},user{n},pw{n}x,CORP,C:\\:40;D:\\:{n + 1}" for n in range(MAX_IMPORT_ROWS)]
    page = page_preview(client, "\n".join([HEADER, *lines])).get_data(as_text=True)
    done = client.post("/workloads/import", data={"content": sealed(page), "confirm": "Import"})
    assert done.status_code == 303 and total(client) == MAX_IMPORT_ROWS
    noisy = [f"10.9.{n // 250}.{n % 250 + 1},u,{os.urandom(90).hex()},,C:\\:1" for n in range(7000)]
    refused = page_preview(client, "\n".join([HEADER, *noisy]))
    text = refused.get_data(as_text=True)
    assert refused.status_code == 413 and "Too large to confirm on this page (7000 rows)" in text
    assert sealed(text) is None and total(client) == MAX_IMPORT_ROWS


def test_no_file_chosen_is_explained(client):
    response = client.post("/workloads/import", data={"preview": "Preview"}, content_type="multipart/form-data")
    assert response.status_code == 422 and "Choose a CSV file" in response.get_data(as_text=True)


def test_confirm_checks_again_and_never_trusts_the_preview(client):
    page = page_preview(client, GOOD).get_data(as_text=True)
    make_workload(client, ip="10.5.0.1")  # meanwhile, someone adds one of the IPs
    again = client.post("/workloads/import", data={"content": sealed(page), "confirm": "Import"})
    text = again.get_data(as_text=True)
    assert again.status_code == 422 and "10.5.0.1 is already a workload" in text and total(client) == 1
    forged = client.post("/workloads/import", data={"content": sealed(page)[:-4] + "AAAA", "confirm": "Import"})
    assert forged.status_code == 422 and "upload the file again" in forged.get_data(as_text=True)
    from webapp.extensions import vault

    with client.application.app_context():
        # a ciphertext of the same key, packed alike, but not a sealed import (as a stored password is not)
        other = vault.encrypt(zlib.compress(GOOD.replace("10.5.0.1", "10.5.0.9").encode()).decode("latin-1"))
        other_bytes = client.application.extensions["vault"].encrypt(zlib.compress(GOOD.encode())).decode()
    for content in (other, other_bytes):
        refused = client.post("/workloads/import", data={"content": content, "confirm": "Import"})
        assert refused.status_code == 422 and "upload the file again" in refused.get_data(as_text=True)
    assert total(client) == 1


def test_with_csrf_on_both_steps_need_the_session_s_token(config):
    from conftest import client_as
    from webapp import create_app

    app = create_app({**config, "WTF_CSRF_ENABLED": True})
    try:
        client = client_as(app, "admin")
        page = client.get("/workloads/import").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        data = {"file": (io.BytesIO(GOOD.encode()), "m.csv"), "preview": "Preview"}
        assert client.post("/workloads/import", data=dict(data), content_type="multipart/form-data").status_code == 400
        data = {"file": (io.BytesIO(GOOD.encode()), "m.csv"), "preview": "Preview", "csrf_token": token}
        preview = client.post("/workloads/import", data=data, content_type="multipart/form-data")
        content = sealed(preview.get_data(as_text=True))
        assert preview.status_code == 200 and content
        assert client.post("/workloads/import", data={"content": content, "confirm": "Import"}).status_code == 400
        assert total(client) == 0
        done = client.post("/workloads/import", data={"content": content, "confirm": "Import", "csrf_token": token})
        assert done.status_code == 303 and total(client) == 2
    finally:
        app.extensions["db"].kw["bind"].dispose()


# --- the domain rules -------------------------------------------------------------------------------------

def test_duplicate_rows_names_the_first_row_of_each_ip():
    assert duplicate_rows([(0, "a"), (1, "b"), (2, "a"), (3, "a")]) == {2: 0, 3: 0}
    assert duplicate_rows([]) == {}


def test_duplicate_messages_prefer_the_row_in_the_file_then_the_stored_one():
    messages = duplicate_messages([(0, "10.0.0.1"), (4, "10.0.0.1"), (5, "10.0.0.2")],
                                  {"10.0.0.1": 7, "10.0.0.2": 8})
    assert messages == {0: "10.0.0.1 is already a workload (id 7).",
                        4: "Same IP address as row 0: each IP may appear once.",
                        5: "10.0.0.2 is already a workload (id 8)."}
