"""The test runs API: create (every refusal), outcomes by exit code, the queue, cancel, rerun, logs, downloads.

Runs are executed by ``work()`` (an RQ SimpleWorker in this process, burst); only quick files are run.
"""
from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from datetime import datetime

import pytest

from conftest import ADMIN, client_as, make_user

PASSING = "sample_tests/test_passing.py"
FAILING = "sample_tests/test_failing.py"
FIXTURE_ERROR = "sample_tests/test_fixture_error.py"
SKIP_XFAIL = "sample_tests/test_skip_xfail.py"
PARAMETRIZED = "sample_tests/test_parametrized.py"
RUN_KEYS = {"id", "username", "environment_id", "pool", "priority", "test_files", "state", "queue_position",
            "estimated_start_seconds", "exit_code", "summary",
            "tests", "error", "created_at", "started_at", "finished_at", "duration", "sandbox",
            "migration_id", "link", "variables", "secrets", "stages"}


def error_code(response) -> str:
    assert response.is_json, response.data[:200]
    body = response.json["error"]
    assert set(body) == {"code", "message", "fields"} and body["message"]
    return body["code"]


def create(client, files=(PASSING,), environment_id=1, username=None) -> dict:
    """A run of the client's account (``username``: also send it in the body)."""
    body = {"environment_id": environment_id, "test_files": list(files)}
    if username is not None:
        body["username"] = username
    response = client.post("/api/v1/runs", json=body)
    assert response.status_code == 201, response.json
    return response.json


def get(client, run_id) -> dict:
    response = client.get(f"/api/v1/runs/{run_id}")
    assert response.status_code == 200
    return response.json


def upload(client, name: str, body: bytes, directory: str = "mine") -> str:
    response = client.post("/api/v1/test-files", data={"directory": directory, "file": (io.BytesIO(body), name)},
                           content_type="multipart/form-data")
    assert response.status_code == 201, response.json
    return response.json["path"]


def queued_jobs(app) -> int:
    return len(app.extensions["queues"]["default"])


def interval(run: dict) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(run["started_at"]), datetime.fromisoformat(run["finished_at"])


# --- create ------------------------------------------------------------------------------------------

def test_create_is_201_with_location_and_the_whole_run(app, client, as_role):
    alice = as_role("operator", "alice")
    response = alice.post("/api/v1/runs", json={"username": "  alice  ", "environment_id": 5,
                                                "test_files": [FAILING, PASSING]})
    assert response.status_code == 201
    body = response.json
    assert set(body) == RUN_KEYS
    assert response.headers["Location"].endswith(f"/api/v1/runs/{body['id']}")
    assert body["username"] == "alice" and body["environment_id"] == 5
    assert body["test_files"] == [FAILING, PASSING]  # in the order given
    assert body["state"] == "queued" and body["queue_position"] == 0  # the environment was free: it starts next
    assert body["summary"] == {"total": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0, "xfailed": 0, "xpassed": 0}
    assert body["tests"] == [] and body["error"] is None and body["exit_code"] is None
    assert datetime.fromisoformat(body["created_at"])
    assert body["started_at"] is None and body["finished_at"] is None and body["duration"] is None
    assert client.get(response.headers["Location"]).json == body
    assert queued_jobs(app) == 1


def test_limits_are_inclusive(app, client):
    files = [p["path"] for p in client.get("/api/v1/test-files").json]
    assert len(files) >= 6
    longest = client_as(app, "x" * 64, "operator")  # the longest account name
    assert create(longest, files, environment_id=100, username="x" * 64)["username"] == "x" * 64
    assert create(client, [PASSING], environment_id=1)["environment_id"] == 1
    assert create(client, [PASSING], environment_id="7")["environment_id"] == 7  # digits, as a form sends them


def fifty_one_files(client) -> list[str]:
    return [upload(client, f"test_n{i}.py", b"def test_n():\n    pass\n") for i in range(51)]


NOT_YOURS = "This is always the signed-in account (admin)"


@pytest.mark.parametrize("changes, field, message", [
    ({"username": "bob"}, "username", NOT_YOURS),  # another account (made by the test)
    ({"username": "nobody"}, "username", NOT_YOURS),  # no account at all
    ({"username": "admin2"}, "username", NOT_YOURS),
    ({"username": 42}, "username", NOT_YOURS),
    ({"username": ["admin"]}, "username", NOT_YOURS),
    ({"username": "x" * 65}, "username", NOT_YOURS),
    ({"username": "ad\tmin"}, "username", NOT_YOURS),
    ({"username": "ad\nmin"}, "username", NOT_YOURS),
    ({"username": "ad\x00min"}, "username", NOT_YOURS),
    ({"environment_id": 0}, "environment_id", "Choose an environment from 1 to 100."),
    ({"environment_id": 101}, "environment_id", "Choose an environment from 1 to 100."),
    ({"environment_id": -1}, "environment_id", "Choose an environment from 1 to 100."),
    ({"environment_id": "abc"}, "environment_id", "Choose an environment from 1 to 100."),
    ({"environment_id": 1.5}, "environment_id", "Choose an environment from 1 to 100."),
    ({"environment_id": True}, "environment_id", "Choose an environment from 1 to 100."),
    ({"environment_id": None}, "environment_id", "Choose an environment, or a pool"),
    ({"test_files": []}, "test_files", "Choose at least one test file."),
    ({"test_files": None}, "test_files", "Choose at least one test file."),
    ({"test_files": PASSING}, "test_files", "must be a list"),
    ({"test_files": [PASSING, PASSING]}, "test_files", f"Listed twice: {PASSING}"),
    ({"test_files": ["sample_tests/test_nope.py"]}, "test_files", "Not an available test file: sample_tests/test_nope.py"),
    ({"test_files": ["uploads/../sample_tests/test_passing.py"]}, "test_files", "Not an available test file"),
    ({"test_files": ["sample_tests/../webapp/config.py"]}, "test_files", "Not an available test file"),
    ({"test_files": ["/etc/passwd"]}, "test_files", "Not an available test file"),
    ({"test_files": ["sample_tests"]}, "test_files", "Not an available test file"),
    ({"test_files": [PASSING, 7]}, "test_files", "Each test file must be a path"),
    ({"test_files": [""]}, "test_files", "Each test file must be a path"),
    ({"test_files": "fifty-one"}, "test_files", "At most 50 test files per run."),
])
def test_invalid_input_is_422_with_field_messages_and_queues_nothing(app, client, changes, field, message):
    make_user(app, "bob", "operator")
    if changes.get("test_files") == "fifty-one":
        changes = {"test_files": fifty_one_files(client)}
    payload = {"username": ADMIN, "environment_id": 1, "test_files": [PASSING], **changes}
    response = client.post("/api/v1/runs", json=payload)
    assert response.status_code == 422
    assert error_code(response) == "validation_error"
    assert set(response.json["error"]["fields"]) == {field}
    assert any(message in m for m in response.json["error"]["fields"][field]), response.json
    assert client.get("/api/v1/runs").json["total"] == 0
    assert queued_jobs(app) == 0
    assert client.get("/api/v1/environments/1").json["status"] == "idle"


def test_every_invalid_field_is_reported_at_once(client):
    response = client.post("/api/v1/runs", json={"username": "", "environment_id": 0, "test_files": []})
    assert response.status_code == 422
    assert set(response.json["error"]["fields"]) == {"environment_id", "test_files"}  # "": the caller
    response = client.post("/api/v1/runs", json={})
    assert set(response.json["error"]["fields"]) == {"environment_id", "test_files"}
    response = client.post("/api/v1/runs", json={"username": "someone-else", "environment_id": 0, "test_files": []})
    assert set(response.json["error"]["fields"]) == {"username", "environment_id", "test_files"}


@pytest.mark.parametrize("sent", [{}, {"username": None}, {"username": ""}, {"username": "   "}, {"username": ADMIN},
                                  {"username": "  Admin "}])
def test_the_run_belongs_to_the_token_s_account_named_or_not(client, sent):
    response = client.post("/api/v1/runs", json={"environment_id": 1, "test_files": [PASSING], **sent})
    assert response.status_code == 201, response.json
    assert response.json["username"] == ADMIN
    assert get(client, response.json["id"])["username"] == ADMIN


def test_an_operator_s_run_is_its_own_and_it_may_not_start_one_for_another(app, client, as_role):
    operator = as_role("operator", "olga")
    assert create(operator)["username"] == "olga"
    response = operator.post("/api/v1/runs", json={"username": ADMIN, "environment_id": 1, "test_files": [PASSING]})
    assert response.status_code == 422 and error_code(response) == "validation_error"
    assert set(response.json["error"]["fields"]) == {"username"}
    assert [r["username"] for r in client.get("/api/v1/runs").json["items"]] == ["olga"]


def test_a_viewer_may_not_start_cancel_or_rerun_a_run(app, client, as_role):
    viewer = as_role("viewer", "vera")
    response = viewer.post("/api/v1/runs", json={"environment_id": 1, "test_files": [PASSING]})
    assert response.status_code == 403 and error_code(response) == "forbidden"
    run = create(client)
    for action in ("cancel", "rerun"):
        response = viewer.post(f"/api/v1/runs/{run['id']}/{action}")
        assert response.status_code == 403 and error_code(response) == "forbidden"
    assert client.get("/api/v1/runs").json["total"] == 1 and get(client, run["id"])["state"] == "queued"
    assert viewer.get(f"/api/v1/runs/{run['id']}").json == get(client, run["id"])  # reading is fine


@pytest.mark.parametrize("body, content_type", [
    (b"{not json", "application/json"), (b"", "application/json"), (b"[1]", "application/json"),
])
def test_malformed_json_is_400(client, body, content_type):
    response = client.post("/api/v1/runs", data=body, content_type=content_type)
    assert response.status_code == 400 and error_code(response) == "bad_json"
    assert client.get("/api/v1/runs").json["total"] == 0


@pytest.mark.parametrize("body, content_type", [
    (b"username=alice", "application/x-www-form-urlencoded"), (b'{"environment_id": 1}', "text/plain"),
])
def test_a_body_that_is_not_json_is_415(client, body, content_type):
    response = client.post("/api/v1/runs", data=body, content_type=content_type)
    assert response.status_code == 415 and error_code(response) == "unsupported_media_type"
    assert client.get("/api/v1/runs").json["total"] == 0


# --- outcomes ----------------------------------------------------------------------------------------

IMPORT_ERROR = b"raise RuntimeError('the module cannot even be imported')\n\ndef test_never():\n    pass\n"
NO_TESTS = b"HELPER = 42\n\n\ndef helper():\n    return HELPER\n"


@pytest.mark.parametrize("files, state, exit_code, error, summary", [
    ([PASSING], "success", 0, None, {"total": 7, "passed": 7, "failed": 0, "errors": 0, "skipped": 0, "xfailed": 0, "xpassed": 0}),
    ([FAILING], "failed", 1, None, {"total": 3, "passed": 1, "failed": 2, "errors": 0, "skipped": 0, "xfailed": 0, "xpassed": 0}),
    ([FIXTURE_ERROR], "failed", 1, None, {"total": 3, "passed": 1, "failed": 0, "errors": 2, "skipped": 0, "xfailed": 0, "xpassed": 0}),
    ([SKIP_XFAIL], "success", 0, None, {"total": 6, "passed": 1, "failed": 0, "errors": 0, "skipped": 3, "xfailed": 1,
                                    "xpassed": 1}),
    ([PASSING, PARAMETRIZED], "failed", 1, None, {"total": 17, "passed": 16, "failed": 1, "errors": 0, "skipped": 0, "xfailed": 0, "xpassed": 0}),
    (["upload:test_broken_import.py"], "error", 2, "pytest was interrupted (exit code 2)",
     {"total": 1, "passed": 0, "failed": 0, "errors": 1, "skipped": 0, "xfailed": 0, "xpassed": 0}),
    (["upload:test_nothing_here.py"], "error", 5, "no tests were collected (exit code 5)",
     {"total": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0, "xfailed": 0, "xpassed": 0}),
])
def test_the_exit_code_decides_the_final_state(client, work, files, state, exit_code, error, summary):
    bodies = {"test_broken_import.py": IMPORT_ERROR, "test_nothing_here.py": NO_TESTS}
    files = [upload(client, f[7:], bodies[f[7:]]) if f.startswith("upload:") else f for f in files]
    run = create(client, files)
    work()
    done = get(client, run["id"])
    assert (done["state"], done["exit_code"], done["error"]) == (state, exit_code, error)
    assert done["summary"] == summary
    assert len(done["tests"]) == summary["total"]
    assert done["queue_position"] is None
    started, finished = interval(done)
    assert started <= finished and done["duration"] == pytest.approx((finished - started).total_seconds(), abs=0.01)
    assert client.get("/api/v1/environments/1").json["status"] == "idle"


def test_each_test_is_reported_with_its_node_id_outcome_and_duration(client, work):
    run = create(client, [PASSING, FIXTURE_ERROR, SKIP_XFAIL])
    work()
    tests = {t["nodeid"]: t for t in get(client, run["id"])["tests"]}
    assert tests["sample_tests/test_passing.py::TestDiscounts::test_full_discount_is_free"]["outcome"] == "passed"
    assert tests["sample_tests/test_fixture_error.py::test_stock_level_of_a_known_sku"]["outcome"] == "error"
    assert tests["sample_tests/test_fixture_error.py::test_reserving_stock_is_audited"]["outcome"] == "error"
    assert tests["sample_tests/test_skip_xfail.py::test_skipped_at_runtime"]["outcome"] == "skipped"
    assert tests["sample_tests/test_skip_xfail.py::test_fixed_bug_unexpectedly_passes"]["outcome"] == "xpassed"
    assert tests["sample_tests/test_skip_xfail.py::test_large_total_is_formatted"]["outcome"] == "xfailed"
    assert all(set(t) == {"nodeid", "outcome", "duration", "message", "details", "file", "line", "flaky",
                          "new_failure"} and t["duration"] >= 0 for t in tests.values())
    assert list(tests)[0] == "sample_tests/test_passing.py::test_single_item_includes_vat"  # in the order run


def test_files_with_the_same_name_in_different_directories_run_together(client, work):
    mine = upload(client, "test_passing.py", b"def test_mine():\n    assert True\n", directory="team-a")
    theirs = upload(client, "test_passing.py", b"def test_theirs():\n    assert True\n", directory="team-b")
    run = create(client, [PASSING, mine, theirs])
    work()
    done = get(client, run["id"])
    assert done["state"] == "success", client.get(f"/api/v1/runs/{run['id']}/log.txt").get_data(as_text=True)
    assert {"uploads/team-a/test_passing.py::test_mine", "uploads/team-b/test_passing.py::test_theirs"} <= {
        t["nodeid"] for t in done["tests"]}
    assert done["summary"]["passed"] == 9


def test_output_that_is_not_utf8_is_logged_with_replacement_characters(client, work):
    path = upload(client, "test_bad_bytes.py", (
        b"import sys\n"
        b"sys.stdout.buffer.write(b'\\xff\\xfe at import\\n')\n\n"
        b"def test_prints_bad_bytes(capsys):\n"
        b"    with capsys.disabled():\n"
        b"        sys.stdout.buffer.write(b'\\xff\\xfe bad bytes\\n')\n"
        b"        sys.stdout.flush()\n"
        b"    assert True\n"))
    run = create(client, [path])
    work()
    response = client.get(f"/api/v1/runs/{run['id']}")
    assert response.status_code == 200 and response.is_json
    assert response.json["state"] == "success"
    log = client.get(f"/api/v1/runs/{run['id']}/log").json["text"]
    assert "\ufffd\ufffd bad bytes" in log
    assert "\ufffd" in client.get(f"/api/v1/runs/{run['id']}/log.txt").get_data(as_text=True)


def test_output_with_nul_bytes_is_logged_in_full(client, work):
    path = upload(client, "test_nul.py", (
        b"def test_prints_a_nul(capsys):\n"
        b"    with capsys.disabled():\n"
        b"        print('before\\x00after', flush=True)\n"
        b"    assert False, 'the end of the log must still arrive'\n"))
    run = create(client, [path])
    work()
    assert get(client, run["id"])["state"] == "failed"
    log = client.get(f"/api/v1/runs/{run['id']}/log.txt").get_data(as_text=True)
    assert "before" in log and "after" in log
    assert "FAILED uploads/mine/test_nul.py::test_prints_a_nul" in log and "1 failed" in log


# --- the queue of an environment -----------------------------------------------------------------------

def test_a_second_run_waits_for_the_environment_then_both_run_in_creation_order(client, as_role, work):
    first = create(client, [PASSING], environment_id=3)
    second = create(as_role("operator", "bob"), [SKIP_XFAIL], environment_id=3, username="bob")
    elsewhere = create(client, [PASSING], environment_id=4)
    assert first["queue_position"] == 0
    assert second["state"] == "queued" and second["queue_position"] == 1
    assert elsewhere["queue_position"] == 0  # another environment: not behind anyone
    env = client.get("/api/v1/environments/3").json
    assert (env["status"], env["current_run_id"], env["queue"]) == ("busy", first["id"], [second["id"]])
    listed = {r["id"]: r["queue_position"] for r in client.get("/api/v1/runs").json["items"]}
    assert listed == {first["id"]: 0, second["id"]: 1, elsewhere["id"]: 0}

    work()
    a, b = get(client, first["id"]), get(client, second["id"])
    assert a["state"] == b["state"] == "success"
    (start_a, end_a), (start_b, end_b) = interval(a), interval(b)
    assert start_a < end_a <= start_b < end_b
    assert a["queue_position"] is None and b["queue_position"] is None
    env = client.get("/api/v1/environments/3").json
    assert (env["status"], env["current_run_id"], env["queue"]) == ("idle", None, [])


def test_three_runs_keep_their_places_in_line(client):
    ids = [create(client, [PASSING], environment_id=9)["id"] for _ in range(3)]
    assert [get(client, i)["queue_position"] for i in ids] == [0, 1, 2]
    assert client.get("/api/v1/environments/9").json["queue"] == ids[1:]


# --- cancel ------------------------------------------------------------------------------------------

def test_cancelling_a_waiting_run_takes_it_out_of_the_queue_at_once(client, work):
    first = create(client, [PASSING], environment_id=2)
    second = create(client, [PASSING], environment_id=2)
    third = create(client, [PASSING], environment_id=2)
    response = client.post(f"/api/v1/runs/{second['id']}/cancel")
    assert response.status_code == 202
    assert response.json["state"] == "cancelled" and response.json["finished_at"] is not None
    assert response.json["queue_position"] is None
    assert get(client, third["id"])["queue_position"] == 1
    assert client.get("/api/v1/environments/2").json["queue"] == [third["id"]]
    work()
    assert [get(client, r["id"])["state"] for r in (first, second, third)] == ["success", "cancelled", "success"]
    cancelled = get(client, second["id"])
    assert cancelled["started_at"] is None and cancelled["exit_code"] is None
    assert client.get(f"/api/v1/runs/{second['id']}/log").json == {"text": "", "offset": 0, "next_offset": 0,
                                                                    "complete": True}


def test_cancelling_the_run_given_the_environment_hands_it_to_the_next(client, work):
    first = create(client, [PASSING], environment_id=6)
    second = create(client, [PASSING], environment_id=6)
    assert client.post(f"/api/v1/runs/{first['id']}/cancel").json["state"] == "cancelled"
    assert get(client, second["id"])["queue_position"] == 0
    env = client.get("/api/v1/environments/6").json
    assert (env["status"], env["current_run_id"], env["queue"]) == ("busy", second["id"], [])
    work()
    assert get(client, first["id"])["started_at"] is None
    assert get(client, second["id"])["state"] == "success"
    assert client.get("/api/v1/environments/6").json["status"] == "idle"


def test_a_finished_run_cannot_be_cancelled(client, work):
    run = create(client)
    work()
    for _ in range(2):
        response = client.post(f"/api/v1/runs/{run['id']}/cancel")
        assert response.status_code == 409 and error_code(response) == "invalid_state"
        assert "success" in response.json["error"]["message"]
    assert get(client, run["id"])["state"] == "success"
    cancelled = create(client)
    client.post(f"/api/v1/runs/{cancelled['id']}/cancel")
    assert client.post(f"/api/v1/runs/{cancelled['id']}/cancel").status_code == 409


# --- rerun -------------------------------------------------------------------------------------------

def test_rerun_creates_a_new_run_with_the_same_inputs(client, as_role, work):
    carol = as_role("operator", "carol")
    run = create(carol, [FAILING, PASSING], environment_id=8, username="carol")
    work()
    response = client.post(f"/api/v1/runs/{run['id']}/rerun")
    assert response.status_code == 201
    again = response.json
    assert response.headers["Location"].endswith(f"/api/v1/runs/{again['id']}")
    assert again["id"] != run["id"] and again["state"] == "queued"
    # the new run belongs to whoever pressed rerun, not to the original's owner
    assert (again["username"], again["environment_id"], again["test_files"]) == (ADMIN, 8, [FAILING, PASSING])
    assert get(client, run["id"])["state"] == "failed" and get(client, run["id"])["username"] == "carol"
    mine = carol.post(f"/api/v1/runs/{again['id']}/rerun")  # and an operator rerunning the admin's run
    assert mine.status_code == 201 and mine.json["username"] == "carol"


def test_rerun_of_a_waiting_run_queues_behind_it(client):
    run = create(client, environment_id=12)
    again = client.post(f"/api/v1/runs/{run['id']}/rerun").json
    assert again["queue_position"] == 1


def test_rerun_checks_the_inputs_again(client):
    path = upload(client, "test_gone.py", b"def test_a():\n    pass\n")
    run = create(client, [path])
    client.delete(f"/api/v1/test-files/{path}")
    response = client.post(f"/api/v1/runs/{run['id']}/rerun")
    assert response.status_code == 422 and "test_files" in response.json["error"]["fields"]
    assert client.get("/api/v1/runs").json["total"] == 1


def test_a_test_file_deleted_before_its_run_starts_ends_the_run_in_error(client, work):
    path = upload(client, "test_gone.py", b"def test_a():\n    pass\n")
    run = create(client, [path, PASSING])
    client.delete(f"/api/v1/test-files/{path}")
    work()
    done = get(client, run["id"])
    assert done["state"] == "error" and path in done["error"]
    assert client.get("/api/v1/environments/1").json["status"] == "idle"


# --- listing -----------------------------------------------------------------------------------------

def test_list_is_newest_first_paginated_and_filtered(client, as_role, work):
    alice, bob = as_role("operator", "alice"), as_role("operator", "bob")
    a = create(alice, [PASSING], environment_id=1)
    b = create(bob, [FAILING], environment_id=2)
    work()
    c = create(alice, [PASSING], environment_id=2)
    body = client.get("/api/v1/runs").json
    assert set(body) == {"items", "total", "page", "per_page"}
    assert [r["id"] for r in body["items"]] == [c["id"], b["id"], a["id"]] and body["total"] == 3
    assert body["page"] == 1 and body["per_page"] == 50
    assert set(body["items"][0]) == RUN_KEYS

    def ids(query):
        response = client.get(f"/api/v1/runs?{query}")
        assert response.status_code == 200
        return [r["id"] for r in response.json["items"]]

    assert ids("state=success") == [a["id"]]
    assert ids("state=failed") == [b["id"]]
    assert ids("state=queued") == [c["id"]]
    assert ids("state=cancelled") == []
    assert ids("environment_id=2") == [c["id"], b["id"]]
    assert ids("username=alice") == [c["id"], a["id"]]
    assert ids("username=alice&environment_id=2&state=queued") == [c["id"]]
    assert ids("state=&environment_id=&username=") == [c["id"], b["id"], a["id"]]  # an empty filter is no filter
    page = client.get("/api/v1/runs?per_page=2&page=2").json
    assert page["total"] == 3 and page["per_page"] == 2 and [r["id"] for r in page["items"]] == [a["id"]]
    assert client.get("/api/v1/runs?username=alice&per_page=1").json["total"] == 2


@pytest.mark.parametrize("query, field", [
    ("state=done", "state"), ("state=QUEUED", "state"), ("environment_id=0", "environment_id"),
    ("environment_id=101", "environment_id"), ("environment_id=abc", "environment_id"),
    ("page=0", "page"), ("per_page=x", "per_page"),
])
def test_a_bad_filter_is_422(client, query, field):
    response = client.get(f"/api/v1/runs?{query}")
    assert response.status_code == 422 and error_code(response) == "validation_error"
    assert field in response.json["error"]["fields"]


# --- the log -----------------------------------------------------------------------------------------

def test_log_slices_put_together_give_the_whole_log(client, work, monkeypatch):
    run = create(client, [PASSING, FAILING])
    url = f"/api/v1/runs/{run['id']}/log"
    assert client.get(url).json == {"text": "", "offset": 0, "next_offset": 0, "complete": False}  # queued
    work()
    full = client.get(f"/api/v1/runs/{run['id']}/log.txt").get_data(as_text=True)
    assert full.startswith("# sandbox: ") and "\n$ pytest " in full and "test_shipping_label FAILED" in full and "2 failed, 8 passed" in full

    whole = client.get(url).json
    assert whole == {"text": full, "offset": 0, "next_offset": len(full), "complete": True}
    middle = len(full) // 2
    assert client.get(f"{url}?offset={middle}").json == {"text": full[middle:], "offset": middle,
                                                         "next_offset": len(full), "complete": True}
    assert client.get(f"{url}?offset={len(full)}").json == {"text": "", "offset": len(full),
                                                            "next_offset": len(full), "complete": True}
    beyond = client.get(f"{url}?offset={len(full) + 1000}").json
    assert beyond["text"] == "" and beyond["next_offset"] == len(full) and beyond["complete"] is True
    far_beyond = client.get(f"{url}?offset={10 ** 30}")
    assert far_beyond.status_code == 200 and far_beyond.json["text"] == ""

    from webapp.runs import services
    monkeypatch.setattr(services, "LOG_PAGE", 100)  # serve the log 100 characters at a time
    pieces, offset = [], 0
    while True:
        part = client.get(f"{url}?offset={offset}").json
        assert part["offset"] == offset and part["next_offset"] == offset + len(part["text"])
        assert len(part["text"]) <= 100
        pieces.append(part["text"])
        offset = part["next_offset"]
        if part["complete"]:
            break
        assert part["text"], "an incomplete slice of a finished run is never empty"
    assert "".join(pieces) == full and len(pieces) == -(-len(full) // 100)


@pytest.mark.parametrize("offset", ["-1", "x", "1.5", "0x10", " ", "²", "１"])
def test_a_bad_log_offset_is_422(client, offset):
    run = create(client)
    response = client.get(f"/api/v1/runs/{run['id']}/log", query_string={"offset": offset})
    assert response.status_code == 422 and "offset" in response.json["error"]["fields"]


# --- downloads ---------------------------------------------------------------------------------------

def test_junit_and_log_downloads(client, work):
    run = create(client, [PASSING, FAILING])
    junit = client.get(f"/api/v1/runs/{run['id']}/junit.xml")
    assert junit.status_code == 404 and error_code(junit) == "not_found"
    work()
    junit = client.get(f"/api/v1/runs/{run['id']}/junit.xml")
    assert junit.status_code == 200 and junit.mimetype == "application/xml"
    assert junit.headers["Content-Disposition"] == f'attachment; filename="run-{run["id"]}-junit.xml"'
    cases = ET.fromstring(junit.data).iter("testcase")
    assert len(list(cases)) == 10
    log = client.get(f"/api/v1/runs/{run['id']}/log.txt")
    assert log.status_code == 200 and log.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert log.headers["Content-Disposition"] == f'attachment; filename="run-{run["id"]}.log"'
    assert log.get_data(as_text=True) == client.get(f"/api/v1/runs/{run['id']}/log").json["text"]


def test_a_cancelled_run_has_no_report(client):
    run = create(client)
    client.post(f"/api/v1/runs/{run['id']}/cancel")
    assert client.get(f"/api/v1/runs/{run['id']}/junit.xml").status_code == 404


@pytest.mark.parametrize("method, suffix", [
    ("get", ""), ("get", "/log"), ("get", "/log.txt"), ("get", "/junit.xml"), ("post", "/cancel"), ("post", "/rerun"),
])
def test_an_unknown_run_is_404(client, method, suffix):
    response = getattr(client, method)(f"/api/v1/runs/424242{suffix}")
    assert response.status_code == 404 and error_code(response) == "not_found"
    assert client.get("/api/v1/runs").json["total"] == 0


def test_pytest_runs_scrubbed_and_limited_in_its_own_directory(client, work):
    path = upload(client, "test_sandbox.py", (
        b"import os, resource\n"
        b"def test_no_app_settings_or_secrets():\n"
        b"    leaked = {'SECRET_KEY', 'CREDENTIALS_KEY', 'DATABASE_URL', 'REDIS_URL', 'DATA_DIR'} & set(os.environ)\n"
        b"    assert not leaked\n"
        b"def test_resource_limits():\n"
        b"    assert resource.getrlimit(resource.RLIMIT_AS)[0] == 1024 ** 3\n"
        b"    assert resource.getrlimit(resource.RLIMIT_CPU)[0] > 0\n"
        b"    assert resource.getrlimit(resource.RLIMIT_FSIZE)[0] == 512 * 1024 ** 2\n"
        b"def test_own_process_group_and_directory():\n"
        b"    assert os.getpgrp() in (os.getpid(), 0)  # 0: the group's leader is outside its PID namespace\n"
        b"    assert os.path.isfile('pytest.ini') and os.path.basename(os.getcwd()).isdigit()\n"))
    run = create(client, [path])
    work()
    body = get(client, run["id"])
    assert body["state"] == "success", client.get(f"/api/v1/runs/{run['id']}/log.txt").get_data(as_text=True)
    assert body["summary"]["passed"] == 3
