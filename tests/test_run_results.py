"""Each test's result, complete (issue 12, part 1): real runs of uploaded tests through a worker, under the
sandbox; what the run JSON, the test_results rows and the run page say; tests that attack the plugin's file."""
from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import select

from webapp.domain.results import DETAILS_MARKER, DETAILS_MAX_BYTES
from webapp.extensions import db
from webapp.models import RunRow, TestResultRow
from webapp.runs import sandbox

CASES = b'''\
import time

import pytest


@pytest.fixture
def broken():
    raise RuntimeError("the fixture broke")


@pytest.fixture
def bad_teardown():
    yield
    raise RuntimeError("teardown broke")


def test_assert():
    assert 1 == 2


def test_fixture_error(broken):
    pass


def test_fail():
    pytest.fail("boom")


def test_skip():
    pytest.skip("not on this environment")


@pytest.mark.xfail(reason="known bug 42")
def test_xfail():
    assert False


@pytest.mark.xfail(reason="fixed meanwhile?")
def test_xpass():
    pass


@pytest.mark.xfail(reason="must fail", strict=True)
def test_xpass_strict():
    pass


def test_sleeps():
    time.sleep(0.2)


def test_passes():
    pass


def test_teardown_error(bad_teardown):
    pass


def test_huge_message():
    assert False, "y" * 100000
'''
NAME = "uploads/results/test_cases.py"


def line_of(name: str) -> int:
    """The 1-based line of ``def name(`` in CASES, or of its first decorator (as pytest's report says)."""
    lines = CASES.decode().splitlines()
    index = lines.index(next(line for line in lines if line.startswith(f"def {name}(")))
    while lines[index - 1].startswith("@"):
        index -= 1
    return index + 1

EXPECTED = {
    "test_assert": ("failed", "assert 1 == 2", 18),
    "test_fixture_error": ("error", "RuntimeError: the fixture broke", 22),
    "test_fail": ("failed", "boom", 26),
    "test_skip": ("skipped", "not on this environment", 30),
    "test_xfail": ("xfailed", "known bug 42", 34),
    "test_xpass": ("xpassed", "fixed meanwhile?", 39),
    "test_xpass_strict": ("failed", "[XPASS(strict)] must fail", 44),
    "test_sleeps": ("passed", None, 48),
    "test_passes": ("passed", None, 52),
    "test_teardown_error": ("error", "RuntimeError: teardown broke", 56),
    "test_huge_message": ("failed", "AssertionError: " + "y" * 984, 60),
}


def upload(client, name: str, body: bytes, directory: str = "results") -> str:
    response = client.post("/api/v1/test-files", data={"directory": directory, "file": (io.BytesIO(body), name)},
                           content_type="multipart/form-data")
    assert response.status_code == 201, response.json
    return response.json["path"]


def run_to_end(client, work, files: list[str]) -> dict:
    response = client.post("/api/v1/runs", json={"environment_id": 3, "test_files": files})
    assert response.status_code == 201, response.json
    work()
    body = client.get(f"/api/v1/runs/{response.json['id']}").json
    assert body["state"] in ("success", "failed", "error"), body
    return body


@pytest.fixture
def cases_run(client, work):
    assert upload(client, "test_cases.py", CASES) == NAME
    return run_to_end(client, work, [NAME])


def test_each_outcome_with_its_message_traceback_file_line_and_real_duration(app, client, cases_run):
    body = cases_run
    log = client.get(f"/api/v1/runs/{body['id']}/log.txt").get_data(as_text=True)
    if sandbox.probe().landlock_abi:
        assert body["sandbox"]["mode"].startswith("landlock"), body["sandbox"]
    assert body["state"] == "failed" and body["exit_code"] == 1, log[-3000:]
    tests = {t["nodeid"].split("::")[1]: t for t in body["tests"]}
    assert list(tests) == list(EXPECTED)  # in the order run
    for name, (outcome, message, line) in EXPECTED.items():
        test = tests[name]
        assert set(test) == {"nodeid", "outcome", "duration", "message", "details", "file", "line", "flaky",
                             "new_failure"}
        assert (test["outcome"], test["message"], test["file"], test["line"]) == (outcome, message, NAME,
                                                                                  line_of(name)), name
        assert test["flaky"] is False and test["new_failure"] is False
        assert isinstance(test["duration"], float) and test["duration"] >= 0
    assert tests["test_sleeps"]["duration"] >= 0.2 and tests["test_passes"]["duration"] < 0.2
    assert tests["test_passes"]["details"] is None and tests["test_skip"]["details"] is None
    assert "def test_assert():" in tests["test_assert"]["details"]
    assert "E       assert 1 == 2" in tests["test_assert"]["details"]
    assert f"{NAME}:{line_of('test_assert') + 1}: AssertionError" in tests["test_assert"]["details"]
    assert 'raise RuntimeError("the fixture broke")' in tests["test_fixture_error"]["details"]
    assert "teardown broke" in tests["test_teardown_error"]["details"]
    huge = tests["test_huge_message"]["details"]
    assert huge.endswith(DETAILS_MARKER) and "[details truncated at 64 KiB]" in huge
    assert len(huge[: -len(DETAILS_MARKER)].encode()) == DETAILS_MAX_BYTES
    assert body["summary"] == {"total": 11, "passed": 2, "failed": 4, "errors": 2, "skipped": 1, "xfailed": 1,
                               "xpassed": 1}
    assert client.get(f"/api/v1/runs/{body['id']}/junit.xml").status_code == 200  # JUnit still kept
    with app.app_context():
        rows = db.session.scalars(select(TestResultRow).where(TestResultRow.run_id == body["id"])
                                  .order_by(TestResultRow.id)).all()
        run = db.session.get(RunRow, body["id"])
        assert [r.nodeid for r in rows] == [t["nodeid"] for t in body["tests"]]
        assert {(r.environment_id, r.finished_at) for r in rows} == {(3, run.finished_at)}
        assert run.tests is None  # the rows are the record now


def test_the_runs_list_keeps_the_tests_light(client, cases_run):
    [item] = client.get("/api/v1/runs").json["items"]
    assert item["summary"] == cases_run["summary"]
    assert [t["nodeid"] for t in item["tests"]] == [t["nodeid"] for t in cases_run["tests"]]
    assert all(set(t) == {"nodeid", "outcome", "duration", "message", "file", "line"} for t in item["tests"])


def test_the_run_page_lists_failures_first_with_their_traceback_then_the_rest_and_the_slowest(client, cases_run):
    page = client.get(f"/runs/{cases_run['id']}").get_data(as_text=True)
    failures = page.index('id="failures"')
    others = page.index('id="other-tests"')
    slowest = page.index('id="slowest"')
    assert failures < others < slowest
    failing_part, other_part = page[failures:others], page[others:slowest]
    for name in ("test_assert", "test_fixture_error", "test_fail", "test_xpass_strict", "test_teardown_error"):
        assert f"{NAME}::{name}</code>" in failing_part and f"{NAME}::{name}</code>" not in other_part
    for name in ("test_skip", "test_xfail", "test_xpass", "test_sleeps", "test_passes"):
        assert f"{NAME}::{name}</code>" in other_part and f"{NAME}::{name}</code>" not in failing_part
    assert failing_part.count("<details>") == 6 and "E       assert 1 == 2" in failing_part
    assert f"<code>{NAME}:{line_of('test_assert')}</code>" in failing_part and "boom" in failing_part
    assert "not on this environment" in other_part and "known bug 42" in other_part
    slow = re.findall(r"<tr><td><code>([^<]+)</code>", page[slowest:])
    assert len(slow) == 10 and slow[0] == f"{NAME}::test_sleeps"
    assert "1 xfailed, 1 xpassed" in page


@pytest.mark.parametrize("outcome, shown", [
    ("failed", {"test_assert", "test_fail", "test_xpass_strict", "test_huge_message"}),
    ("error", {"test_fixture_error", "test_teardown_error"}),
    ("xfailed", {"test_xfail"}), ("xpassed", {"test_xpass"}), ("skipped", {"test_skip"}),
    ("passed", {"test_sleeps", "test_passes"}),
])
def test_the_run_page_filters_by_outcome_with_plain_links(client, cases_run, outcome, shown):
    run_id = cases_run["id"]
    whole = client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert f'href="/runs/{run_id}?outcome={outcome}"' in whole
    page = client.get(f"/runs/{run_id}?outcome={outcome}").get_data(as_text=True)
    listed = page[page.index('id="run-results"'):page.index('id="slowest"')]
    names = set(re.findall(rf"<code>{re.escape(NAME)}::(\w+)</code>", listed))
    assert names == shown
    assert f'href="/runs/{run_id}"' in page  # back to all


def test_an_unknown_outcome_filter_is_refused_not_a_server_error(client, cases_run):
    response = client.get(f"/runs/{cases_run['id']}?outcome=exploded")
    assert response.status_code == 422 and "Unknown outcome" in response.get_data(as_text=True)


TAMPER = {
    "deletes": "os.remove(OUT)",
    "garbage": "open(OUT, 'w').write('not json {{{\\n\\x00\\x00[[[\\n')",
    "fakes": "open(OUT, 'w').write('{\"nodeid\": 5, \"outcome\": \"passed\"}\\n{\"end\": \"x\"}\\n')",
    "links": "os.remove(OUT); os.symlink('/etc/passwd', OUT)",
    "directory": "os.remove(OUT); os.mkdir(OUT)",
}


@pytest.mark.parametrize("attack", sorted(TAMPER))
def test_a_test_that_attacks_the_plugin_s_file_cannot_break_the_run(app, client, work, attack):
    body = (f"import os\nOUT = os.path.join(os.getcwd(), 'cutover-results.jsonl')\n\n"
            f"def test_first():\n    assert True\n\n"
            f"def test_attack():\n    {TAMPER[attack]}\n\n"
            f"def test_after():\n    assert 1 == 2\n").encode()
    path = upload(client, f"test_{attack}.py", body)
    done = run_to_end(client, work, [path])
    assert done["state"] == "failed" and done["error"] is None
    outcomes = {t["nodeid"].split("::")[1]: t["outcome"] for t in done["tests"]}
    assert outcomes == {"test_first": "passed", "test_attack": "passed", "test_after": "failed"}  # JUnit's
    assert done["summary"]["total"] == 3 and done["summary"]["failed"] == 1
    assert "root:" not in str(done["tests"])
    assert client.get(f"/runs/{done['id']}").status_code == 200


def test_a_collection_error_is_an_error_with_its_reason(client, work):
    path = upload(client, "test_broken.py", b"import no_such_module_here\n\ndef test_x():\n    pass\n")
    done = run_to_end(client, work, [path])
    assert done["state"] == "error" and done["exit_code"] == 2
    [test] = done["tests"]
    assert (test["nodeid"], test["outcome"], test["file"]) == (path, "error", path)
    assert test["message"] == "ModuleNotFoundError: No module named 'no_such_module_here'"
    assert "import no_such_module_here" in test["details"]
    assert done["summary"]["errors"] == 1


def test_only_xfailed_xpassed_skipped_and_passed_is_a_success(client, work):
    path = upload(client, "test_fine.py", b"import pytest\n\n@pytest.mark.xfail(reason='r')\ndef test_x():\n"
                                          b"    assert 0\n\n@pytest.mark.xfail\ndef test_y():\n    pass\n\n"
                                          b"def test_z():\n    pytest.skip('no')\n\ndef test_ok():\n    pass\n")
    done = run_to_end(client, work, [path])
    assert done["state"] == "success"
    assert {k: v for k, v in done["summary"].items() if v} == {"total": 4, "passed": 1, "skipped": 1, "xfailed": 1,
                                                               "xpassed": 1}
    page = client.get(f"/runs/{done['id']}").get_data(as_text=True)
    assert 'id="failures"' not in page and 'id="other-tests"' in page


def test_an_old_run_with_only_runs_tests_still_shows_its_tests(app, client):
    with app.app_context():
        row = RunRow(username="admin", environment_id=2, test_files=["sample_tests/test_passing.py"], state="failed",
                     summary={"total": 2, "passed": 1, "failed": 1, "errors": 0, "skipped": 0},
                     tests=[{"nodeid": "sample_tests/test_passing.py::test_a", "outcome": "passed", "duration": 0.5},
                            {"nodeid": "sample_tests/test_passing.py::test_b", "outcome": "failed", "duration": 1.0},
                            {"nodeid": 7, "outcome": "odd"}])
        db.session.add(row)
        db.session.commit()
        run_id = row.id
    body = client.get(f"/api/v1/runs/{run_id}").json
    assert body["summary"] == {"total": 2, "passed": 1, "failed": 1, "errors": 0, "skipped": 0, "xfailed": 0,
                               "xpassed": 0}
    assert [(t["nodeid"].split("::")[1], t["outcome"], t["duration"], t["message"], t["details"], t["flaky"])
            for t in body["tests"]] == [("test_a", "passed", 0.5, None, None, False),
                                        ("test_b", "failed", 1.0, None, None, False)]
    assert [t["outcome"] for t in client.get("/api/v1/runs").json["items"][0]["tests"]] == ["passed", "failed"]
    page = client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert "sample_tests/test_passing.py::test_b</code>" in page and "No traceback was reported." in page


def test_a_viewer_sees_the_results_and_the_filter(as_role, cases_run):
    viewer = as_role("viewer")
    assert viewer.get(f"/runs/{cases_run['id']}?outcome=failed").status_code == 200
    assert len(viewer.get(f"/api/v1/runs/{cases_run['id']}").json["tests"]) == 11


@pytest.mark.slow
def test_a_run_on_a_real_worker_process_records_its_results(client, worker_processes):
    from conftest import wait_until

    path = upload(client, "test_cases.py", CASES)
    worker_processes(1)
    run_id = client.post("/api/v1/runs", json={"environment_id": 4, "test_files": [path]}).json["id"]
    body = wait_until(lambda: (b := client.get(f"/api/v1/runs/{run_id}").json)["state"] not in ("queued", "running")
                      and b, timeout=60)
    outcomes = {t["nodeid"].split("::")[1]: t["outcome"] for t in body["tests"]}
    assert outcomes == {name: expected[0] for name, expected in EXPECTED.items()}
    assert body["summary"]["xfailed"] == body["summary"]["xpassed"] == 1


def test_recording_500_results_is_one_quick_insert(app):
    import time

    from webapp.domain.results import TestResult
    from webapp.runs import results

    with app.app_context():
        row = RunRow(username="admin", environment_id=5, test_files=["x"], state="running")
        db.session.add(row)
        db.session.commit()
        tests = [TestResult(f"uploads/p/test_p.py::test_{i}", "failed" if i % 10 == 0 else "passed", 0.01 * i,
                            "assert 0" if i % 10 == 0 else None, "trace\n" * 20 if i % 10 == 0 else None,
                            "uploads/p/test_p.py", i + 1) for i in range(500)]
        started = time.perf_counter()
        assert results.record(db.session, row.id, 5, None, tests) == 500
        db.session.commit()
        elapsed = time.perf_counter() - started
        assert db.session.query(TestResultRow).filter_by(run_id=row.id).count() == 500
        assert elapsed < 0.5, elapsed  # the budget is 50 ms; loose here for a busy test machine


def test_the_history_s_flags_show_as_badges_and_in_the_json(app, client, monkeypatch):
    from webapp.testhistory import stats

    with app.app_context():
        row = RunRow(username="admin", environment_id=2, test_files=["sample_tests/test_passing.py"], state="failed",
                     summary={"total": 2, "passed": 1, "failed": 1, "errors": 0, "skipped": 0})
        db.session.add(row)
        db.session.flush()
        from webapp.runs import results

        results.record(db.session, row.id, 2, None, [
            {"nodeid": "t.py::test_new", "outcome": "failed", "duration": 0.1, "message": "assert 0"},
            {"nodeid": "t.py::test_flaky", "outcome": "passed", "duration": 0.1}])
        db.session.commit()
        run_id = row.id
    asked = []
    monkeypatch.setattr(stats, "flags", lambda session, rid: asked.append(rid) or {
        "t.py::test_new": {"flaky": False, "new_failure": True}, "t.py::test_flaky": {"flaky": True}})
    tests = {t["nodeid"]: t for t in client.get(f"/api/v1/runs/{run_id}").json["tests"]}
    assert (tests["t.py::test_new"]["new_failure"], tests["t.py::test_new"]["flaky"]) == (True, False)
    assert (tests["t.py::test_flaky"]["new_failure"], tests["t.py::test_flaky"]["flaky"]) == (False, True)
    page = client.get(f"/runs/{run_id}").get_data(as_text=True)
    failures, others = page.index('id="failures"'), page.index('id="other-tests"')
    assert 'badge-new-failure">new failure</span>' in page[failures:others]
    assert 'badge-flaky">flaky</span>' in page[others:] and 'badge-flaky">flaky' not in page[failures:others]
    assert asked == [run_id, run_id]
    asked.clear()
    client.get("/api/v1/runs")
    assert asked == []  # the list does not ask for every run's flags


def test_the_history_is_updated_right_after_the_results_in_the_run_s_final_transaction(app, client, work,
                                                                                         monkeypatch):
    from webapp.testhistory import stats

    seen = []

    def update(session, run_id):
        row = session.get(RunRow, run_id)
        count = session.query(TestResultRow).filter_by(run_id=run_id).count()
        seen.append((run_id, row.state, count))

    monkeypatch.setattr(stats, "update", update)
    path = upload(client, "test_two.py", b"def test_a():\n    pass\n\ndef test_b():\n    assert 0\n")
    done = run_to_end(client, work, [path])
    assert seen == [(done["id"], "failed", 2)]


def test_a_run_that_times_out_keeps_the_results_of_the_tests_that_ended(app, client, work):
    app.config["RUN_TIMEOUT_SECONDS"] = 2
    path = upload(client, "test_hangs.py", b"import time\n\ndef test_quick():\n    pass\n\ndef test_bad():\n"
                                           b"    assert 2 + 2 == 5\n\ndef test_hangs():\n    time.sleep(60)\n")
    done = run_to_end(client, work, [path])
    assert (done["state"], done["error"]) == ("error", "timed out after 2 s")
    assert [(t["nodeid"].split("::")[1], t["outcome"], t["message"]) for t in done["tests"]] == [
        ("test_quick", "passed", None), ("test_bad", "failed", "assert (2 + 2) == 5")]  # no JUnit: the plugin's
    assert done["summary"]["total"] == 2


def test_real_runs_mark_a_new_failure_once_and_a_flaky_test_and_feed_the_tests_list(client, work):
    """End to end, no stand-ins: the same test passes, fails, fails again, passes, fails on one environment."""
    def version(passes: bool) -> str:
        body = b"def test_flip():\n    assert " + (b"True" if passes else b"False") + b"\n"
        response = client.post("/api/v1/test-files", data={"directory": "e2e", "overwrite": "true",
                                                           "file": (io.BytesIO(body), "test_flip.py")},
                               content_type="multipart/form-data")
        assert response.status_code in (200, 201), response.json
        return response.json["path"]

    flags = []
    for passes in (True, False, False, True, False):
        path = version(passes)
        (test,) = run_to_end(client, work, [path])["tests"]
        assert test["outcome"] == ("passed" if passes else "failed")
        flags.append((test["new_failure"], test["flaky"]))
    # flips P→F, F→F, F→P, P→F: 3 of 4 consecutive pairs (0.75 ≥ 0.2); new failure only right after a pass
    assert [f[0] for f in flags] == [False, True, False, False, True]
    assert flags[-1][1] is True and flags[0][1] is False
    listed = client.get("/api/v1/tests", query_string={"q": "e2e/test_flip.py"}).json["items"]
    assert len(listed) == 1 and listed[0]["runs"] == 5 and (listed[0]["passed"], listed[0]["failed"]) == (2, 3)
    assert listed[0]["flaky_score"] == 0.75 and listed[0]["last_outcome"] == "failed"
    history = client.get(f"/api/v1/tests/{listed[0]['nodeid']}/history").json["items"]
    assert [h["outcome"] for h in history] == ["failed", "passed", "failed", "failed", "passed"]  # newest first
