"""The test run and environment pages, as a person uses them: without JavaScript, and with htmx."""
from __future__ import annotations

import html
import io
import re

import pytest

from conftest import ADMIN, client_as, user_client

HX = {"HX-Request": "true"}
PASSING = "sample_tests/test_passing.py"
FAILING = "sample_tests/test_failing.py"
QUICK = b"def test_quick():\n    assert sum(range(10)) == 45\n"


def text(response) -> str:
    return response.get_data(as_text=True)


def unescaped(response) -> str:
    return html.unescape(text(response))


def create(client, files=(PASSING,), environment_id=1, username=None) -> dict:
    """A run of the client's account, or of ``username``'s (an operator, made if need be)."""
    if username is not None:
        client = user_client(client.application, username)
    response = client.post("/api/v1/runs", json={"environment_id": environment_id, "test_files": list(files)})
    assert response.status_code == 201, response.json
    assert response.json["username"] == (username or client.username)
    return response.json


def upload(client, name="test_quick.py", body=QUICK, directory="smoke") -> str:
    response = client.post("/api/v1/test-files", data={"directory": directory, "file": (io.BytesIO(body), name)},
                           content_type="multipart/form-data")
    assert response.status_code == 201, response.json
    return response.json["path"]


def run_form(**changes) -> dict:
    return {"environment_id": "5", "test_files": [PASSING, FAILING], "save": "Start run", **changes}


def upload_form(name="test_quick.py", body=QUICK, directory="smoke", **changes) -> dict:
    return {"file": (io.BytesIO(body), name), "directory": directory, "upload": "Upload", **changes}


def section(page: str, section_id: str) -> str:
    """The ``<section id=...>`` of a page (a live region: the parts of the page it polls for are inside it)."""
    found = re.search(rf'<section id="{section_id}"[^>]*>.*?</section>', page, re.S)
    assert found, f"no section #{section_id}"
    return found.group(0)


def log_of(page: str) -> str:
    return re.search(r'<pre id="run-log"[^>]*>(.*?)</pre>', page, re.S).group(1)


def log_tail(page: str) -> str:
    return re.search(r'<(a|p) id="log-tail".*?</\1>', page, re.S).group(0)


def options(page: str, select_id: str) -> list[tuple[str, str, bool]]:
    """``(value, label, selected)`` of each option of the select ``select_id``."""
    select = re.search(rf'<select[^>]*id="{select_id}"[^>]*>(.*?)</select>', page, re.S).group(1)
    found = []
    for attributes, label in re.findall(r"<option([^>]*)>([^<]*)</option>", select):
        value = re.search(r'value="([^"]*)"', attributes).group(1)
        found.append((value, label.strip(), bool(re.search(r"\bselected\b", attributes))))
    return found


def optgroups(page: str) -> dict[str, list[str]]:
    return {label: re.findall(r'<option value="([^"]+)"', body)
            for label, body in re.findall(r'<optgroup label="([^"]+)">(.*?)</optgroup>', page, re.S)}


# --- the runs list -----------------------------------------------------------------------------------

def test_the_list_polls_only_while_a_run_on_it_is_queued_or_running(client, work):
    empty = section(text(client.get("/runs/")), "runs-table")
    assert "No runs" in empty and "hx-trigger" not in empty
    first, second = create(client, environment_id=2), create(client, [FAILING], environment_id=2, username="bob")
    page = section(text(client.get("/runs/")), "runs-table")
    assert 'hx-get="/runs/?page=1" hx-trigger="every 1s"' in page
    assert page.count('class="badge badge-queued"') == 2 and "#1 in line" in page
    assert page.index(f'href="/runs/{second["id"]}"') < page.index(f'href="/runs/{first["id"]}"')  # newest first
    work()
    page = section(text(client.get("/runs/")), "runs-table")
    assert "hx-trigger" not in page
    assert 'class="badge badge-success"' in page and 'class="badge badge-failed"' in page
    assert "7 passed" in page and "2 failed" in page
    assert len(re.findall(r"<td>\d+\.\d s</td>", page)) == 2  # each finished run shows its duration


def test_the_list_fragment_for_htmx_is_the_table_alone(client):
    create(client)
    fragment = text(client.get("/runs/", headers=HX))
    assert fragment.lstrip().startswith('<section id="runs-table">') and "<html" not in fragment
    assert 'hx-trigger="every 1s"' in fragment


def test_filters_work_without_javascript(client, work):
    create(client, environment_id=1, username="alice")
    create(client, [FAILING], environment_id=2, username="bob")
    work()
    create(client, environment_id=3, username="carol")
    page = text(client.get("/runs/?state=failed&environment_id=&username="))
    table = section(page, "runs-table")
    assert "bob" in table and "alice" not in table and "carol" not in table
    assert re.search(r'<option value="failed"\s+selected', page)  # the form shows the filter in use
    assert "hx-trigger" not in table  # the queued run is filtered out: nothing live on this page
    page = text(client.get("/runs/?username=carol&state=&environment_id="))
    table = section(page, "runs-table")
    assert "carol" in table and 'hx-trigger="every 1s"' in table and 'value="carol"' in page
    table = section(text(client.get("/runs/?environment_id=1")), "runs-table")
    assert "alice" in table and "bob" not in table
    assert "No runs match these filters" in text(client.get("/runs/?state=cancelled"))
    response = client.get("/runs/?state=bogus")
    assert response.status_code == 422 and "Traceback" not in text(response)


def test_the_pages_of_a_filtered_list_keep_the_filters(client):
    for i in range(3):
        create(client, environment_id=1, username="alice")
        create(client, environment_id=2, username="bob")
    page = text(client.get("/runs/?username=bob&per_page=2"))
    older = re.search(r'href="([^"]+)" rel="next"', page).group(1)
    assert "username=bob" in html.unescape(older)
    second = section(text(client.get(html.unescape(older))), "runs-table")
    assert "bob" in second and "alice" not in second


# --- the new-run form --------------------------------------------------------------------------------

def test_the_form_lists_environments_with_their_state_and_files_grouped_by_directory(client):
    upload(client)
    create(client, environment_id=2)
    create(client, environment_id=2)
    create(client, environment_id=3)
    client.patch("/api/v1/environments/4", json={"enabled": False})
    page = unescaped(client.get("/runs/new"))
    environments = options(page, "environment_id")
    assert environments[0][0] == "" and len(environments) == 100  # a prompt, then the 99 enabled environments
    labels = dict((value, label) for value, label, _ in environments)
    assert labels["1"] == "1 · env-1 — idle"
    assert labels["2"] == "2 · env-2 — busy, 1 waiting"
    assert labels["3"] == "3 · env-3 — busy"
    assert "4" not in labels
    groups = optgroups(page)
    assert list(groups) == ["sample_tests/", "sample_tests/validation/", "uploads/smoke/"]
    assert PASSING in groups["sample_tests/"] and groups["uploads/smoke/"] == ["uploads/smoke/test_quick.py"]
    assert re.search(r'<select id="test_files" name="test_files" multiple', page)
    assert 'id="upload-panel"' in page and 'enctype="multipart/form-data"' in page and 'type="file"' in page
    assert '<option value="smoke">' in page  # existing upload directories are offered


def test_a_run_from_the_form_is_started_as_the_signed_in_account(app, client):
    """The form shows who starts the run, read-only: there is no username to type (one sent anyway is ignored)."""
    dora = client_as(app, "dora", "operator")
    page = text(dora.get("/runs/new"))
    assert '<output id="run-username">dora</output>' in page and 'name="username"' not in page
    response = dora.post("/runs/new", data=run_form(username="  someone-else  "))
    assert response.status_code == 303
    run_id = int(re.search(r"/runs/(\d+)$", response.headers["Location"]).group(1))
    body = client.get(f"/api/v1/runs/{run_id}").json
    assert (body["username"], body["environment_id"], body["test_files"]) == ("dora", 5, [PASSING, FAILING])
    assert "<dd>dora</dd>" in text(dora.get(response.headers["Location"]))
    page = text(client.get("/runs/new"))  # another account sees its own name
    assert f'<output id="run-username">{ADMIN}</output>' in page and ">dora<" not in page
    assert client.post("/runs/new", data=run_form(username="x" * 65)).status_code == 303  # no longer a field
    assert [r["username"] for r in client.get("/api/v1/runs").json["items"]] == [ADMIN, "dora"]


def test_a_viewer_is_not_offered_the_run_form_nor_buttons_it_may_not_press(client, as_role):
    viewer = as_role("viewer")
    assert viewer.get("/runs/new").status_code == 403
    assert viewer.post("/runs/new", data=run_form()).status_code == 403
    assert client.get("/api/v1/runs").json["total"] == 0
    run = create(client)
    page = text(viewer.get(f"/runs/{run['id']}"))
    assert "<dd>admin</dd>" in page
    assert f'action="/runs/{run["id"]}/cancel"' not in page and f'action="/runs/{run["id"]}/rerun"' not in page
    for action in ("cancel", "rerun"):
        assert viewer.post(f"/runs/{run['id']}/{action}").status_code == 403
    assert client.get("/api/v1/runs").json["total"] == 1
    assert client.get(f"/api/v1/runs/{run['id']}").json["state"] == "queued"


@pytest.mark.parametrize("changes, field, message", [
    ({"environment_id": ""}, "environment_id", "Choose an environment, or a pool"),
    ({"environment_id": "101"}, "environment_id", "Choose an environment from 1 to 100."),
    ({"environment_id": "abc"}, "environment_id", "Choose an environment from 1 to 100."),
    ({"test_files": []}, "test_files", "Choose at least one test file."),
    ({"test_files": [PASSING, PASSING]}, "test_files", f"Listed twice: {PASSING}"),
    ({"test_files": ["sample_tests/test_gone.py"]}, "test_files",
     "Not an available test file: sample_tests/test_gone.py"),
])
def test_form_errors_appear_beside_their_field_and_nothing_is_queued(app, client, changes, field, message):
    response = client.post("/runs/new", data=run_form(**changes))
    assert response.status_code == 422
    page = unescaped(response)
    container = 'id="file-picker" class="field has-error"' if field == "test_files" else None
    if container is None:
        match = re.search(rf'<div class="field has-error">\s*<label for="{field}">.*?</div>', page, re.S)
        assert match and message in match.group(0), page
    else:
        assert container in page and message in page.split(container)[1].split("</div>")[0]
    assert client.get("/api/v1/runs").json["total"] == 0
    assert len(app.extensions["queues"]["default"]) == 0


def test_a_refused_form_keeps_what_was_entered(client):
    gone = upload(client, "test_gone.py")  # chosen on the form, then deleted before it was sent
    assert client.delete(f"/api/v1/test-files/{gone}").status_code == 204
    response = client.post("/runs/new", data=run_form(test_files=[PASSING, FAILING, gone]))
    assert response.status_code == 422
    page = unescaped(response)
    chosen = [value for value, _, selected in options(page, "test_files") if selected]
    assert chosen == [FAILING, PASSING]
    assert ("5", "5 · env-5 — idle", True) in options(page, "environment_id")


def test_a_disabled_environment_is_refused_beside_its_field(client):
    client.patch("/api/v1/environments/5", json={"enabled": False})
    response = client.post("/runs/new", data=run_form())
    assert response.status_code == 422 and "Environment 5 is disabled" in unescaped(response)


# --- uploading from the form -------------------------------------------------------------------------

def test_upload_without_javascript_redirects_back_to_the_form_with_a_message(client):
    response = client.post("/runs/upload", data=upload_form(), content_type="multipart/form-data")
    assert response.status_code == 303 and response.headers["Location"].endswith("/runs/new")
    page = unescaped(client.get(response.headers["Location"]))
    assert "Uploaded uploads/smoke/test_quick.py" in page
    assert optgroups(page)["uploads/smoke/"] == ["uploads/smoke/test_quick.py"]


def test_upload_with_htmx_returns_the_panel_and_swaps_in_the_file_picker_with_the_file_selected(client):
    response = client.post("/runs/upload", data=upload_form(test_files=[PASSING]), headers=HX,
                           content_type="multipart/form-data")
    assert response.status_code == 200
    fragment = text(response)
    assert "<html" not in fragment and fragment.lstrip().startswith('<form id="upload-panel"')
    assert "Uploaded <code>uploads/smoke/test_quick.py</code>" in fragment
    picker = re.search(r'<div id="file-picker"[^>]*>', fragment).group(0)
    assert 'hx-swap-oob="true"' in picker  # replaces #file-picker itself: no wrapper piles up
    assert fragment.count('id="file-picker"') == 1
    chosen = [value for value, _, selected in options(fragment, "test_files") if selected]
    assert chosen == [PASSING, "uploads/smoke/test_quick.py"]  # what was already chosen stays chosen
    page = text(client.get("/runs/new"))
    assert 'hx-include="#test_files"' in page and 'hx-swap-oob' not in page


@pytest.mark.parametrize("changes, field, message", [
    ({"name": "conftest.py"}, "file", "conftest.py cannot be uploaded"),
    ({"body": b"def test_x(:\n"}, "file", "Not valid Python: invalid syntax on line 1."),
    ({"directory": "Bad Name"}, "directory", "Directory names use a–z, 0–9, _ and -"),
    ({"directory": ""}, "directory", "Choose a directory, or type a new name."),
])
def test_a_refused_upload_shows_the_reason_beside_its_field(client, changes, field, message):
    for headers in ({}, HX):
        response = client.post("/runs/upload", data=upload_form(**changes), headers=headers,
                               content_type="multipart/form-data")
        assert response.status_code == 422
        page = unescaped(response)
        assert ("<html" in page) is (not headers)
        match = re.search(rf'<div class="field has-error">\s*<label for="{field}">.*?</div>', page, re.S)
        assert match and message in match.group(0), page
        assert "hx-swap-oob" not in page
    assert not any(e["uploaded"] for e in client.get("/api/v1/test-files").json)


def test_an_existing_file_is_replaced_only_when_asked(client):
    upload(client)
    response = client.post("/runs/upload", data=upload_form(body=QUICK + b"# v2\n"), content_type="multipart/form-data")
    assert response.status_code == 422 and "already exists" in unescaped(response)
    response = client.post("/runs/upload", data=upload_form(body=QUICK + b"# v2\n", overwrite="y"),
                           content_type="multipart/form-data")
    assert response.status_code == 303
    sizes = {e["path"]: e["size"] for e in client.get("/api/v1/test-files").json}
    assert sizes["uploads/smoke/test_quick.py"] == len(QUICK) + 5


def test_a_file_over_the_limit_is_refused_on_the_form(client):
    big = QUICK + b"#" * (1024 * 1024)
    response = client.post("/runs/upload", data=upload_form(body=big), content_type="multipart/form-data")
    assert response.status_code == 413 and "The file is larger than 1 MiB." in unescaped(response)
    assert not any(e["uploaded"] for e in client.get("/api/v1/test-files").json)


# --- the run's page ----------------------------------------------------------------------------------

def test_a_waiting_run_shows_its_place_in_line_its_empty_log_and_a_poller(client):
    create(client, environment_id=7)
    run = create(client, [PASSING, FAILING], environment_id=7, username="erin")
    page = unescaped(client.get(f"/runs/{run['id']}"))
    assert "<dd>erin</dd>" in page and 'href="/environments/7"' in page
    assert f"<code>{PASSING}</code>" in page and f"<code>{FAILING}</code>" in page
    assert 'class="badge badge-queued"' in page and "Position 1 in the queue</strong> for environment 7" in page
    assert log_of(page) == ""
    assert f'hx-get="/runs/{run["id"]}/log?offset=0"' in log_tail(page)
    assert f'action="/runs/{run["id"]}/cancel"' in page and f'action="/runs/{run["id"]}/rerun"' in page
    assert "junit.xml" not in section(page, "run-status") and "Download log" not in section(page, "run-status")
    status = text(client.get(f"/runs/{run['id']}", headers=HX))
    assert status.lstrip().startswith('<section id="run-status"') and 'hx-trigger="every 1s"' in status


def test_a_page_opened_while_the_run_waited_learns_its_sandbox_from_its_polls(client, work):
    run = create(client, [PASSING])
    sandbox = r'<dd id="run-sandbox"( hx-swap-oob="true")?>(.*?)</dd>'
    page = unescaped(client.get(f"/runs/{run['id']}"))
    assert [(oob, "applied when the run starts" in dd) for oob, dd in re.findall(sandbox, page, re.S)] == [("", True)]
    work()
    mode = client.get(f"/api/v1/runs/{run['id']}").json["sandbox"]["mode"]
    on_its_page = {**HX, "HX-Current-URL": f"http://localhost/runs/{run['id']}"}
    status = unescaped(client.get(f"/runs/{run['id']}", headers=on_its_page))
    assert [(oob, f"<code>{mode}</code>" in dd) for oob, dd in re.findall(sandbox, status, re.S)] == [
        (' hx-swap-oob="true"', True)]  # swapped into the page's facts, out of band
    elsewhere = {**HX, "HX-Current-URL": "http://localhost/migrations/1"}  # a migration's validation section
    assert 'id="run-sandbox"' not in text(client.get(f"/runs/{run['id']}", headers=elsewhere))
    page = unescaped(client.get(f"/runs/{run['id']}"))
    assert [(oob, f"<code>{mode}</code>" in dd) for oob, dd in re.findall(sandbox, page, re.S)] == [("", True)]


def test_a_finished_run_shows_its_log_results_and_downloads_and_stops_polling(client, work):
    run = create(client, [PASSING, FAILING])
    work()
    page = unescaped(client.get(f"/runs/{run['id']}"))
    log = client.get(f"/api/v1/runs/{run['id']}/log.txt").get_data(as_text=True)
    assert log_of(page) == log
    assert "hx-trigger" not in section(page, "run-status") and "hx-get" not in log_tail(page)  # no polling
    assert 'class="badge badge-failed"' in page and "exit code 1" in page
    assert "<strong>10</strong> tests" in page and "8 passed" in page and "2 failed" in page
    rows = re.findall(r'<tr class="outcome-(\w+)"><td><code>([^<]+)</code>', page)  # the passed, in a table
    assert len(rows) == 8 and {o for o, _ in rows} == {"passed"}
    failures = re.findall(r'<li class="failure outcome-(\w+)">\s*<details>\s*<summary>.*?<code>([^<]+)</code>',
                          page, re.S)  # failures first, each with its traceback behind a <details>
    assert ("failed", "sample_tests/test_failing.py::test_shipping_label") in failures and len(failures) == 2
    # the downloads are page routes: a browser has its session, not an API token
    assert f'href="/runs/{run["id"]}/junit.xml"' in page and f'href="/runs/{run["id"]}/log.txt"' in page
    assert f'action="/runs/{run["id"]}/cancel"' not in page and f'action="/runs/{run["id"]}/rerun"' in page
    browser = client_as(client.application, ADMIN, token=False)
    junit = browser.get(f"/runs/{run['id']}/junit.xml")
    assert junit.status_code == 200 and junit.mimetype == "application/xml"
    assert junit.data == client.get(f"/api/v1/runs/{run['id']}/junit.xml").data
    download = browser.get(f"/runs/{run['id']}/log.txt")
    assert download.status_code == 200 and download.get_data(as_text=True) == log
    assert download.headers["Content-Disposition"] == f'attachment; filename="run-{run["id"]}.log"'


def test_every_link_of_a_run_page_opens_with_the_session_alone(client, work):
    run = create(client, [PASSING])
    browser = client_as(client.application, ADMIN, token=False)
    for when in ("queued", "finished"):
        page = text(browser.get(f"/runs/{run['id']}")) + text(browser.get(f"/runs/{run['id']}/log?offset=0"))
        links = set(re.findall(r'href="(/[^"]*)"', page)) - {"/logout"}
        assert links, when
        for link in sorted(links):
            assert browser.get(html.unescape(link)).status_code == 200, (when, link)
        work()


def test_the_log_tail_appends_new_text_and_polls_from_the_next_offset_until_complete(client, work, monkeypatch):
    run = create(client)
    url = f"/runs/{run['id']}/log"
    waiting = text(client.get(f"{url}?offset=0"))
    assert "hx-swap-oob" not in waiting and f'hx-get="{url}?offset=0"' in waiting
    work()
    full = client.get(f"/api/v1/runs/{run['id']}/log.txt").get_data(as_text=True)
    from webapp.runs import services
    monkeypatch.setattr(services, "LOG_PAGE", 1000)
    collected, offset = "", 0
    for _ in range(100):
        fragment = text(client.get(f"{url}?offset={offset}"))
        appended = re.search(r'<span hx-swap-oob="beforeend:#run-log">(.*?)</span>', fragment, re.S)
        collected += html.unescape(appended.group(1))
        poller = re.search(rf'hx-get="{url}\?offset=(\d+)" hx-trigger="every 500ms"', fragment)
        if poller is None:
            assert 'id="log-tail"' in fragment and "End of log" in fragment
            break
        assert int(poller.group(1)) == offset + len(html.unescape(appended.group(1)))
        offset = int(poller.group(1))
    assert collected == full and len(full) > 1000
    assert client.get(f"{url}?offset=x").status_code == 422


def test_the_log_is_escaped(client, work):
    path = upload(client, body=b"def test_shout():\n    print('<b>bold</b> & <script>alert(1)</script>')\n"
                               b"    assert False\n")
    run = create(client, [path])
    work()
    page = text(client.get(f"/runs/{run['id']}"))
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert" not in text(client.get(f"/runs/{run['id']}/log?offset=0"))


def test_an_error_run_shows_its_reason(client, work):
    path = upload(client, body=b"HELPER = 1\n")
    run = create(client, [path])
    work()
    page = unescaped(client.get(f"/runs/{run['id']}"))
    assert 'class="badge badge-error"' in page and "no tests were collected (exit code 5)" in page


def test_cancel_from_the_page_with_and_without_htmx(client):
    first, second = create(client, environment_id=8), create(client, environment_id=8)
    fragment = text(client.post(f"/runs/{second['id']}/cancel", headers=HX))
    assert fragment.lstrip().startswith('<section id="run-status"')
    assert 'class="badge badge-cancelled"' in fragment and "hx-trigger" not in fragment
    response = client.post(f"/runs/{first['id']}/cancel")
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/runs/{first['id']}")
    assert "Cancelled." in text(client.get(response.headers["Location"]))
    again = text(client.post(f"/runs/{first['id']}/cancel", headers=HX))
    assert "already cancelled" in again
    response = client.post(f"/runs/{first['id']}/cancel")
    assert "already cancelled" in text(client.get(response.headers["Location"]))
    assert client.get("/api/v1/environments/8").json["status"] == "idle"


def test_run_again_from_the_page(client):
    """The new run belongs to whoever pressed Run again, not to the first run's owner."""
    run = create(client, [FAILING], environment_id=9, username="finn")
    response = client.post(f"/runs/{run['id']}/rerun")
    assert response.status_code == 303
    new_id = int(re.search(r"/runs/(\d+)$", response.headers["Location"]).group(1))
    assert new_id != run["id"]
    page = unescaped(client.get(response.headers["Location"]))
    assert f"Run #{new_id} queued" in page and f"<dd>{ADMIN}</dd>" in page and f"<code>{FAILING}</code>" in page
    assert client.get(f"/api/v1/runs/{run['id']}").json["username"] == "finn"
    finn = user_client(client.application, "finn")
    again = finn.post(f"/runs/{new_id}/rerun")
    assert again.status_code == 303 and "<dd>finn</dd>" in unescaped(finn.get(again.headers["Location"]))


def test_run_again_on_a_disabled_environment_explains_why(client):
    run = create(client, environment_id=9)
    client.patch("/api/v1/environments/9", json={"enabled": False})
    response = client.post(f"/runs/{run['id']}/rerun")
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/runs/{run['id']}")
    assert "Environment 9 is disabled" in unescaped(client.get(response.headers["Location"]))
    assert client.get("/api/v1/runs").json["total"] == 1


@pytest.mark.parametrize("url", ["/runs/424242", "/runs/424242/log", "/environments/0", "/environments/101"])
def test_unknown_runs_and_environments_are_friendly_404s(client, url):
    response = client.get(url)
    assert response.status_code == 404 and "Not found" in text(response) and "Traceback" not in text(response)


# --- environments ------------------------------------------------------------------------------------

def test_the_grid_shows_a_hundred_cells_with_the_busy_ones_marked(client):
    create(client, environment_id=17)
    create(client, environment_id=17)
    client.patch("/api/v1/environments/30", json={"enabled": False})
    page = text(client.get("/environments/"))
    cells = re.findall(r'<li class="cell ([^"]+)">\s*<a href="/environments/(\d+)"', page)
    assert [int(n) for _, n in cells] == list(range(1, 101))
    states = {int(n): classes for classes, n in cells}
    assert states[17] == "busy" and states[30] == "idle disabled" and states[1] == "idle"
    assert sum("busy" in c for c in states.values()) == 1
    cell = page.split('href="/environments/17"')[1].split("</li>")[0]
    assert "1 waiting" in cell and "starting" in cell
    fragment = text(client.get("/environments/", headers=HX))
    assert fragment.lstrip().startswith('<section id="environment-grid"') and "<html" not in fragment


def test_the_environment_page_shows_the_current_run_the_queue_and_recent_runs(client, work):
    done = create(client, environment_id=18, username="gail")
    work()
    current = create(client, environment_id=18, username="hank")
    waiting = [create(client, environment_id=18, username=u) for u in ("ivy", "jon")]
    page = text(client.get("/environments/18"))
    now = page.split("<h2>Now</h2>")[1].split("<h2>Waiting</h2>")[0]
    assert f'href="/runs/{current["id"]}">run #{current["id"]}</a> by hank' in now
    queue = page.split("<h2>Waiting</h2>")[1].split("<h2>Recent runs</h2>")[0]
    assert re.findall(r'run #(\d+)</a> by (\w+)', queue) == [(str(w["id"]), u) for w, u in zip(waiting, ("ivy", "jon"))]
    recent = page.split("<h2>Recent runs</h2>")[1].split("</section>")[0]
    assert [int(i) for i in re.findall(r'href="/runs/(\d+)"', recent)] == [waiting[1]["id"], waiting[0]["id"],
                                                                           current["id"], done["id"]]
    assert 'action="/environments/18/unlock"' in page and "Force unlock" in page
    assert 'hx-trigger="every 1s"' in section(page, "environment-activity")  # live while busy
    assert 'name="name"' in page and 'value="env-18"' in page
    idle = section(text(client.get("/environments/19")), "environment-activity")
    assert "Idle." in idle and "Force unlock" not in idle and "hx-trigger" not in idle


def test_edit_an_environment_from_its_page(client):
    response = client.post("/environments/21", data={"name": "perf lab", "description": "Big iron.", "save": "Save"})
    assert response.status_code == 303  # the unchecked box disables it
    env = client.get("/api/v1/environments/21").json
    assert (env["name"], env["description"], env["enabled"]) == ("perf lab", "Big iron.", False)
    page = text(client.get("/environments/21"))
    assert "Environment 21 saved." in page and "disabled" in page and "Big iron." in page
    response = client.post("/environments/21", data={"name": "  ", "description": "", "enabled": "y", "save": "Save"})
    assert response.status_code == 422
    assert re.search(r'<div class="field has-error">\s*<label for="name">.*?1 to 64 printable characters',
                     text(response), re.S)
    assert client.get("/api/v1/environments/21").json["name"] == "perf lab"
    client.post("/environments/21", data={"name": "perf lab", "enabled": "y", "save": "Save"})
    assert client.get("/api/v1/environments/21").json["enabled"] is True


def test_force_unlock_from_the_page(client, work):
    stuck, next_ = create(client, environment_id=22), create(client, environment_id=22)
    response = client.post("/environments/22/unlock")
    assert response.status_code == 303 and response.headers["Location"].endswith("/environments/22")
    page = text(client.get(response.headers["Location"]))
    assert "Environment 22 unlocked" in page and f"run #{next_['id']}</a>" in page.split("<h2>Waiting</h2>")[0]
    assert client.get(f"/api/v1/runs/{stuck['id']}").json["error"] == "lock released by an operator"
    work()
    assert client.get(f"/api/v1/runs/{next_['id']}").json["state"] == "success"


# --- with CSRF protection on, as in production -------------------------------------------------------

@pytest.fixture
def csrf_client(config):
    """The first admin, signed in, on an app with CSRF protection on."""
    from webapp import create_app

    app = create_app({**config, "WTF_CSRF_ENABLED": True})
    yield client_as(app, ADMIN)
    app.extensions["db"].kw["bind"].dispose()


def tokens(page: str) -> dict[str, str]:
    """The CSRF token of each form on the page, by the form's action."""
    found = {}
    for action, body in re.findall(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', page, re.S):
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"', body)
        found[action] = token and (token.group(1) or token.group(2))
    return found


def test_every_form_of_the_run_pages_carries_its_csrf_token(csrf_client):
    client = csrf_client
    form_page = tokens(text(client.get("/runs/new")))
    assert form_page["/runs/new"] and form_page["/runs/upload"]
    assert client.post("/runs/new", data=run_form()).status_code == 400  # no token: refused
    assert client.get("/api/v1/runs").json["total"] == 0
    response = client.post("/runs/upload", data=upload_form(csrf_token=form_page["/runs/upload"]),
                           content_type="multipart/form-data")
    assert response.status_code == 303
    response = client.post("/runs/new", data=run_form(csrf_token=form_page["/runs/new"]))
    assert response.status_code == 303
    detail = tokens(text(client.get(response.headers["Location"])))
    run_id = client.get("/api/v1/runs").json["items"][0]["id"]
    for action in (f"/runs/{run_id}/rerun", f"/runs/{run_id}/cancel"):
        assert client.post(action, data={"csrf_token": detail[action]}).status_code == 303
    environment = tokens(text(client.get("/environments/5")))
    assert client.post("/environments/5/unlock", data={"csrf_token": environment["/environments/5/unlock"]}
                       ).status_code == 303
    response = client.post("/environments/5", data={"csrf_token": environment["/environments/5"], "name": "five",
                                                    "enabled": "y", "save": "Save"})
    assert response.status_code == 303 and client.get("/api/v1/environments/5").json["name"] == "five"
