"""Tests and their history: stats kept as runs end, the flaky and new-failure badges, the tests list and a
test's history (API and pages), who may read them, bad input, nodeid quoting, two runs ending at once."""
from __future__ import annotations

import threading
from datetime import timedelta
from urllib.parse import quote

import pytest
from sqlalchemy import select

from webapp.db import utcnow
from webapp.extensions import db
from webapp.models import RunRow, TestResultRow, TestStatRow
from webapp.testhistory import stats

LETTER = {"P": "passed", "F": "failed", "E": "error", "S": "skipped", "x": "xfailed", "X": "xpassed"}
ODD = "tests/web ui/test_odd.py::test_case[a/b::c d-%2F?#]"  # slashes, ::, brackets, spaces, % ? #


def record(app, results: dict[str, str | tuple], environment_id: int = 1, duration: float = 0.5) -> int:
    """A finished run with ``results`` ({nodeid: outcome or (outcome, duration, message)}), recorded as a run's
    end records it: rows into test_results, then stats.update in the same transaction. Its id."""
    with app.app_context():
        now = utcnow()
        run = RunRow(username="admin", environment_id=environment_id, test_files=["x.py"], state="success",
                     created_at=now, finished_at=now)
        db.session.add(run)
        db.session.flush()
        for nodeid, result in results.items():
            outcome, seconds, message = result if isinstance(result, tuple) else (result, duration, None)
            db.session.add(TestResultRow(run_id=run.id, environment_id=environment_id, nodeid=nodeid,
                                         outcome=LETTER.get(outcome, outcome), duration=seconds, message=message,
                                         finished_at=now))
        db.session.flush()
        stats.update(db.session, run.id)
        db.session.commit()
        return run.id


def history_of(app, nodeid: str, letters: str, environment_id: int = 1) -> list[int]:
    return [record(app, {nodeid: ch}, environment_id, duration=0.1 * (i + 1)) for i, ch in enumerate(letters)]


def stat(app, nodeid: str) -> TestStatRow:
    with app.app_context():
        row = db.session.get(TestStatRow, nodeid)
        db.session.expunge_all()
        return row


def flags_of(app, run_id: int) -> dict:
    with app.app_context():
        return stats.flags(db.session, run_id)


# --- stats and badges ---------------------------------------------------------------------------------

def test_a_flaky_pattern_gives_its_score_and_the_flaky_badge(app):
    runs = history_of(app, "t.py::flaky", "PFPFPFPF")
    history_of(app, "t.py::stable", "PPPPPPPP")
    row = stat(app, "t.py::flaky")
    assert (row.runs, row.passed, row.failed, row.skipped, row.recent) == (8, 4, 4, 0, "PFPFPFPF")
    assert row.flaky_score == 1.0 and row.pass_rate == 0.5 and row.last_outcome == "failed"
    assert row.last_run_id == runs[-1] and row.median_duration == pytest.approx(0.45)
    assert stat(app, "t.py::stable").flaky_score == 0.0
    assert flags_of(app, runs[-1])["t.py::flaky"]["flaky"] is True
    stable_run = record(app, {"t.py::stable": "P"})
    assert flags_of(app, stable_run) == {"t.py::stable": {"flaky": False, "new_failure": False}}


def test_skips_are_ignored_by_the_flaky_score_and_counted_apart(app):
    history_of(app, "t.py::skippy", "PSSSPSSSPxX")
    row = stat(app, "t.py::skippy")
    assert (row.passed, row.failed, row.skipped, row.flaky_score, row.pass_rate) == (4, 0, 7, 0.0, 1.0)


def test_a_new_failure_is_marked_only_once_and_only_per_environment(app):
    first, second, third = history_of(app, "t.py::x", "PFF")
    assert flags_of(app, second)["t.py::x"]["new_failure"] is True
    assert flags_of(app, third)["t.py::x"]["new_failure"] is False
    assert flags_of(app, first)["t.py::x"]["new_failure"] is False
    # on environment 2 it never passed: failing there is not new; after a pass there it is
    assert flags_of(app, record(app, {"t.py::x": "F"}, environment_id=2))["t.py::x"]["new_failure"] is False
    record(app, {"t.py::x": "P"}, environment_id=2)
    record(app, {"t.py::x": "S"}, environment_id=2)  # a skip in between says nothing
    assert flags_of(app, record(app, {"t.py::x": "E"}, environment_id=2))["t.py::x"]["new_failure"] is True
    assert flags_of(app, record(app, {"t.py::x": "F"}))["t.py::x"]["new_failure"] is False  # env 1 failed last


def test_update_is_idempotent_and_a_run_without_results_changes_nothing(app):
    run_id = record(app, {"t.py::once": "P"})
    with app.app_context():
        stats.update(db.session, run_id)
        stats.update(db.session, 10**8)
        db.session.commit()
    assert stat(app, "t.py::once").runs == 1


def test_many_tests_in_one_run_are_recorded_in_one_go(app):
    run_id = record(app, {f"t{i}.py::test": "P" if i % 3 else "F" for i in range(1200)})
    record(app, {f"t{i}.py::test": "P" for i in range(0, 1200, 2)})
    with app.app_context():
        assert db.session.query(TestStatRow).count() == 1200
        assert db.session.get(TestStatRow, "t0.py::test").recent == "FP"
        assert db.session.get(TestStatRow, "t1.py::test").recent == "P"
    flags = flags_of(app, run_id)
    assert len(flags) == 1200 and not any(f["new_failure"] for f in flags.values())


def test_two_runs_ending_at_once_lose_no_update(app):
    """Both threads record a run of the same tests at the same moment: every result is counted."""
    nodeids = [f"c{i}.py::test" for i in range(50)]
    barrier, errors = threading.Barrier(2), []

    def end_run(outcome: str) -> None:
        try:
            barrier.wait(5)
            for _ in range(5):
                record(app, dict.fromkeys(nodeids, outcome))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=end_run, args=(o,)) for o in "PF"]
    [t.start() for t in threads]
    [t.join(60) for t in threads]
    assert errors == []
    for nodeid in nodeids:
        row = stat(app, nodeid)
        assert (row.runs, row.passed, row.failed, len(row.recent)) == (10, 5, 5, 10)


# --- the API ------------------------------------------------------------------------------------------

def test_the_tests_list_filters_sorts_and_pages(app, client):
    history_of(app, "a/test_one.py::test_flaky", "PFPF")
    history_of(app, "a/test_one.py::test_slow", "PP")
    record(app, {"a/test_one.py::test_slow": ("P", 9.0, None)})
    record(app, {"a/test_one.py::test_slow": ("P", 9.0, None)})
    history_of(app, "b/test_two.py::test_Broken", "FFF")
    history_of(app, "b/test_two.py::test_fine", "P")
    body = client.get("/api/v1/tests").json
    assert [i["nodeid"] for i in body["items"]] == sorted(i["nodeid"] for i in body["items"]) and body["total"] == 4
    assert set(body["items"][0]) == {"nodeid", "runs", "passed", "failed", "skipped", "pass_rate", "flaky_score",
                                     "last_outcome", "last_run_id", "median_duration"}
    assert (body["page"], body["per_page"]) == (1, 50)
    names = lambda url: [i["nodeid"].split("::")[1] for i in client.get(url).json["items"]]  # noqa: E731
    assert names("/api/v1/tests?q=BROKEN") == ["test_Broken"]
    assert names("/api/v1/tests?q=two.py") == ["test_Broken", "test_fine"]
    assert names("/api/v1/tests?q=%25") == [] and names("/api/v1/tests?q=_one") == ["test_flaky", "test_slow"]
    assert names("/api/v1/tests?flaky=true") == ["test_flaky"]
    assert names("/api/v1/tests?flaky=false") == ["test_slow", "test_Broken", "test_fine"]
    assert names("/api/v1/tests?sort=flaky")[0] == "test_flaky"
    assert names("/api/v1/tests?sort=slowest")[0] == "test_slow"
    assert names("/api/v1/tests?sort=failing") == ["test_Broken", "test_flaky"]
    page2 = client.get("/api/v1/tests?per_page=3&page=2").json
    assert [i["nodeid"] for i in page2["items"]] == ["b/test_two.py::test_fine"] and page2["total"] == 4
    flaky = client.get("/api/v1/tests?q=test_flaky").json["items"][0]
    assert client.get("/api/v1/tests?q=test_slow").json["items"][0]["median_duration"] == 4.6
    assert (flaky["runs"], flaky["passed"], flaky["failed"], flaky["pass_rate"], flaky["flaky_score"],
            flaky["last_outcome"]) == (4, 2, 2, 0.5, 1.0, "failed")


def test_a_test_s_history_is_newest_first_filtered_by_environment_and_limited(app, client):
    ones = history_of(app, ODD, "PFP")
    twos = [record(app, {ODD: ("F", 1.5, "assert 1 == 2")}, environment_id=2)]
    url = f"/api/v1/tests/{quote(ODD, safe='/')}/history"
    items = client.get(url).json["items"]
    assert [i["run_id"] for i in items] == (ones + twos)[::-1]
    assert set(items[0]) == {"run_id", "environment_id", "outcome", "duration", "message", "finished_at"}
    assert (items[0]["outcome"], items[0]["duration"], items[0]["message"], items[0]["environment_id"]) == (
        "failed", 1.5, "assert 1 == 2", 2)
    assert [i["run_id"] for i in client.get(url + "?environment_id=1").json["items"]] == ones[::-1]
    assert [i["run_id"] for i in client.get(url + "?limit=2").json["items"]] == [twos[0], ones[-1]]
    assert client.get(url + "?environment_id=7").json == {"items": []}  # known test, never on environment 7
    fully_quoted = f"/api/v1/tests/{quote(ODD, safe='')}/history"
    assert client.get(fully_quoted).json["items"][0]["run_id"] == twos[0]


def test_many_results_history_limit_default_and_max(app, client):
    history_of(app, "t.py::long", "P" * 40)
    assert len(client.get("/api/v1/tests/t.py::long/history").json["items"]) == 30
    assert len(client.get("/api/v1/tests/t.py::long/history?limit=500").json["items"]) == 40


@pytest.mark.parametrize("url, field", [
    ("/api/v1/tests?flaky=maybe", "flaky"), ("/api/v1/tests?sort=random", "sort"),
    ("/api/v1/tests?page=0", "page"), ("/api/v1/tests?q=" + "x" * 201, "q"),
    ("/api/v1/tests/t.py::x/history?limit=0", "limit"), ("/api/v1/tests/t.py::x/history?limit=501", "limit"),
    ("/api/v1/tests/t.py::x/history?limit=abc", "limit"),
    ("/api/v1/tests/t.py::x/history?environment_id=0", "environment_id"),
    ("/api/v1/tests/t.py::x/history?environment_id=x", "environment_id"),
])
def test_bad_parameters_are_refused_with_422(app, client, url, field):
    history_of(app, "t.py::x", "P")
    response = client.get(url)
    assert response.status_code == 422, response.json
    assert response.json["error"]["code"] == "validation_error" and field in response.json["error"]["fields"]


def test_an_unknown_test_is_404(client):
    response = client.get("/api/v1/tests/no/such.py::test/history")
    assert response.status_code == 404 and response.json["error"]["code"] == "not_found"
    assert client.get("/api/v1/tests/" + "x" * 1500 + "/history").status_code == 404
    assert client.get("/api/v1/tests/a%00b/history").status_code == 404  # PostgreSQL refuses NUL: not a 500
    assert client.get("/tests/no/such.py::test").status_code == 404


def test_a_viewer_reads_the_tests_and_anonymous_is_refused(app, as_role, anon_client):
    history_of(app, "t.py::seen", "PF")
    viewer = as_role("viewer")
    assert viewer.get("/api/v1/tests").json["total"] == 1
    assert viewer.get("/api/v1/tests/t.py::seen/history").status_code == 200
    assert viewer.get("/tests/").status_code == 200 and viewer.get("/tests/t.py::seen").status_code == 200
    assert anon_client.get("/api/v1/tests").status_code == 401
    assert anon_client.get("/api/v1/tests/t.py::seen/history").status_code == 401
    page = anon_client.get("/tests/t.py::seen")
    assert page.status_code == 302 and "/login" in page.headers["Location"]


# --- the pages ----------------------------------------------------------------------------------------

def test_the_tests_page_searches_without_javascript_and_has_its_tabs(app, client):
    history_of(app, "a.py::test_flaky", "PFPF")
    history_of(app, "a.py::test_calm", "PP")
    page = client.get("/tests/").get_data(as_text=True)
    assert '<form method="get" action="/tests/"' in page and 'name="q"' in page
    for label, query in (("Flaky", "flaky=true&amp;sort=flaky"), ("Slowest", "sort=slowest"),
                         ("Most failing", "sort=failing")):
        assert f'href="/tests/?{query}">{label}</a>' in page, label
    assert "test_flaky" in page and "test_calm" in page and 'badge-flaky">flaky' in page
    found = client.get("/tests/?q=CALM").get_data(as_text=True)
    assert "test_calm" in found and "test_flaky" not in found
    flaky = client.get("/tests/?flaky=true&sort=flaky").get_data(as_text=True)
    assert "test_flaky" in flaky and "test_calm" not in flaky and 'aria-current="page">Flaky' in flaky
    refused = client.get("/tests/?sort=nope")
    assert refused.status_code == 422 and "Unknown sort" in refused.get_data(as_text=True)
    assert 'id="tests-search-error"' in refused.get_data(as_text=True)  # beside the search form, not an error page
    long = client.get("/tests/?q=" + "x" * 300)
    assert long.status_code == 422 and "at most 200 characters" in long.get_data(as_text=True)
    assert client.get("/tests/?q=nothing-like-it").get_data(as_text=True).count("No tests match") == 1


def test_a_test_page_shows_its_strip_newest_right_and_its_duration_chart(app, client):
    runs = history_of(app, ODD, "PFxP")
    page = client.get("/tests/" + quote(ODD, safe="/")).get_data(as_text=True)
    cells = [page.index(f'href="/runs/{r}" title="Run #{r}:') for r in runs]
    assert cells == sorted(cells)  # oldest left, newest right
    for r, css, label in zip(runs, ("passed", "failed", "xfailed", "passed"),
                             ("passed", "failed", "expected failure", "passed")):
        assert f'class="cell cell-{css}" href="/runs/{r}" title="Run #{r}: {label}, ' in page
    assert "<svg" in page and 'role="img"' in page and "<desc" in page and "<details>" in page
    assert page.count('<circle class="chart-dot') == 4
    for seconds in ("0.100", "0.200", "0.300", "0.400"):  # the table has the chart's numbers
        assert f"<td>{seconds}</td>" in page
    assert "style=" not in page.split("<main", 1)[1]  # no inline style (strict CSP)
    other = client.get("/tests/" + quote(ODD, safe="/") + "?environment_id=2").get_data(as_text=True)
    assert "No results on this environment yet." in other
    assert client.get("/tests/" + quote(ODD, safe="/") + "?environment_id=abc").status_code == 422


def test_a_chart_with_one_point_and_with_none(app, client):
    from webapp.testhistory import chart

    one = chart.durations([{"run_id": 1, "duration": 2.0, "outcome": "passed"}])
    assert len(one["dots"]) == 1 and one["top"] == 2.0 and "2.000 s" in one["summary"]
    assert chart.durations([])["dots"] == [] and chart.durations([])["top"] == 1.0
    assert [chart._nice(v) for v in (0.003, 0.04, 0.25, 0.9, 1.3, 7, 250)] == [0.005, 0.05, 0.25, 1, 2, 10, 250]
    many = chart.durations([{"run_id": i, "duration": i / 7, "outcome": "passed"} for i in range(60)])
    assert len(many["dots"]) == 60 and max(d["y"] for d in many["dots"]) <= many["bottom"]
    assert min(d["y"] for d in many["dots"]) >= many["pad"]
    history_of(app, "t.py::one", "P")
    assert client.get("/tests/t.py::one").get_data(as_text=True).count('<circle class="chart-dot') == 1


def test_the_nav_has_tests(client):
    assert '<a href="/tests/"' in client.get("/tests/").get_data(as_text=True)


def test_results_a_migration_copied_are_history_too(app, client):
    """A test only in test_results (e.g. copied by revision 0008 before its stats were kept) still has a page."""
    with app.app_context():
        run = RunRow(username="admin", environment_id=1, test_files=["x.py"], state="success",
                     finished_at=utcnow() - timedelta(days=1))
        db.session.add(run)
        db.session.flush()
        db.session.add(TestResultRow(run_id=run.id, environment_id=1, nodeid="old.py::t", outcome="passed",
                                     duration=0.2))
        db.session.commit()
    assert client.get("/api/v1/tests/old.py::t/history").json["items"][0]["outcome"] == "passed"
    assert client.get("/tests/old.py::t").status_code == 200
