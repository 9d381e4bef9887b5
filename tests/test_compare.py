"""Comparing two runs: /runs/<a>/compare/<b> and GET /api/v1/runs/<a>/compare/<b> (a: before, b: after), read from
test_results or, for older runs, from runs.tests; and the run page's link to its previous run of the same files on
the same environment."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from webapp.db import utcnow
from webapp.extensions import db
from webapp.models import RunRow, TestResultRow
from webapp.runs import compare

FILES = ["sample_tests/test_a.py", "sample_tests/test_b.py"]
EMPTY = {"fixed": [], "new_failures": [], "still_failing": [], "added": [], "removed": [], "slower": []}


def add_run(app, results=None, *, state="success", environment_id=1, files=FILES, tests=None) -> int:
    """A run inserted directly; ``results``: {nodeid: (outcome, duration)} as test_results rows; ``tests``: the
    older runs.tests JSON."""
    with app.app_context():
        now = utcnow()
        final = state not in ("queued", "running")
        row = RunRow(username="admin", environment_id=environment_id, test_files=list(files), state=state,
                     tests=tests, created_at=now, started_at=now - timedelta(seconds=5) if state != "queued" else None,
                     finished_at=now if final else None)
        db.session.add(row)
        db.session.flush()
        db.session.add_all(TestResultRow(run_id=row.id, environment_id=environment_id, nodeid=nodeid, outcome=outcome,
                                         duration=duration, finished_at=row.finished_at)
                           for nodeid, (outcome, duration) in (results or {}).items())
        db.session.commit()
        return row.id


BEFORE = {"t.py::fixed_f": ("failed", 0.1), "t.py::fixed_e": ("error", 0.1), "t.py::new_f": ("passed", 0.1),
          "t.py::new_e": ("passed", 0.1), "t.py::still": ("failed", 0.1), "t.py::still_e": ("error", 0.1),
          "t.py::removed": ("passed", 0.1), "t.py::same": ("passed", 0.5), "t.py::skip_to_fail": ("skipped", 0.0),
          "t.py::slower": ("passed", 1.0), "t.py::slowest": ("failed", 0.2)}
AFTER = {"t.py::fixed_f": ("passed", 0.1), "t.py::fixed_e": ("passed", 0.1), "t.py::new_f": ("failed", 0.1),
         "t.py::new_e": ("error", 0.1), "t.py::still": ("error", 0.1), "t.py::still_e": ("failed", 0.1),
         "t.py::added_fail": ("failed", 3.0), "t.py::added": ("passed", 0.0), "t.py::same": ("passed", 0.5),
         "t.py::skip_to_fail": ("failed", 0.0), "t.py::slower": ("passed", 1.6), "t.py::slowest": ("failed", 2.2)}
EXPECTED = {
    "fixed": ["t.py::fixed_e", "t.py::fixed_f"],
    "new_failures": ["t.py::new_e", "t.py::new_f"],
    "still_failing": ["t.py::slowest", "t.py::still", "t.py::still_e"],
    "added": ["t.py::added", "t.py::added_fail"],  # failing, but new: added, not a new failure
    "removed": ["t.py::removed"],
    "slower": [{"nodeid": "t.py::slowest", "before": 0.2, "after": 2.2},
               {"nodeid": "t.py::slower", "before": 1.0, "after": 1.6}],
}


def test_the_api_puts_each_test_in_its_bucket(app, client):
    a, b = add_run(app, BEFORE, state="failed"), add_run(app, AFTER, state="failed")
    answer = client.get(f"/api/v1/runs/{a}/compare/{b}")
    assert answer.status_code == 200
    assert answer.json == EXPECTED


def test_the_order_of_the_ids_says_which_is_before(app, client):
    a, b = add_run(app, BEFORE), add_run(app, AFTER)
    reverse = client.get(f"/api/v1/runs/{b}/compare/{a}").json
    assert reverse["fixed"] == EXPECTED["new_failures"] and reverse["new_failures"] == EXPECTED["fixed"]
    assert reverse["added"] == EXPECTED["removed"] and reverse["removed"] == EXPECTED["added"]
    assert reverse["slower"] == []
    failing = sorted(n for n, (outcome, _) in BEFORE.items() if outcome in ("failed", "error"))
    assert client.get(f"/api/v1/runs/{a}/compare/{a}").json == {**EMPTY, "still_failing": failing}


@pytest.mark.parametrize("before, after, slower", [
    (1.0, 1.49, False),  # 1.49×
    (1.0, 1.5, True),    # 1.5×
    (0.2, 0.3, True),    # exactly 1.5× and exactly 0.1 s more
    (0.1, 0.19, False),  # 1.9×, but 0.09 s more
    (0.0, 0.09, False),
    (0.0, 0.1, True),
])
def test_slower_at_its_edges(app, client, before, after, slower):
    a = add_run(app, {"t.py::x": ("passed", before)})
    b = add_run(app, {"t.py::x": ("passed", after)})
    expected = [{"nodeid": "t.py::x", "before": before, "after": after}] if slower else []
    assert client.get(f"/api/v1/runs/{a}/compare/{b}").json["slower"] == expected


def test_a_run_from_before_test_results_is_read_from_its_tests_json(app, client):
    old = [{"nodeid": n, "outcome": o, "duration": d} for n, (o, d) in BEFORE.items()]
    a = add_run(app, tests=old, state="failed")
    b = add_run(app, AFTER, state="failed")
    assert client.get(f"/api/v1/runs/{a}/compare/{b}").json == EXPECTED
    # test_results rows win over the JSON when a run has both
    c = add_run(app, AFTER, tests=[{"nodeid": "t.py::other", "outcome": "failed", "duration": 0}])
    assert client.get(f"/api/v1/runs/{b}/compare/{c}").json["added"] == []
    # no results at all (cancelled while queued, or deleted by retention): everything the other has is added
    d = add_run(app, state="cancelled")
    assert client.get(f"/api/v1/runs/{d}/compare/{b}").json["added"] == sorted(AFTER)


def test_a_run_still_running_compares_with_what_it_has_recorded(app, client):
    a = add_run(app, BEFORE)
    b = add_run(app, {"t.py::fixed_f": ("passed", 0.1)}, state="running")
    answer = client.get(f"/api/v1/runs/{a}/compare/{b}").json
    assert answer["fixed"] == ["t.py::fixed_f"] and "t.py::new_f" in answer["removed"]


def test_two_queries_read_both_runs_and_their_results(app):
    a, b = add_run(app, BEFORE), add_run(app, AFTER)
    with app.app_context():
        statements = []
        engine = db.engine
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        try:
            assert compare.compare(a, b) == EXPECTED
        finally:
            event.remove(engine, "before_cursor_execute", listener)
    statements = [s for s in statements if s.lstrip().upper().startswith("SELECT")]  # not BEGIN
    assert len(statements) == 2, statements
    assert "test_results" in statements[1] and "run_id IN" in statements[1]


@pytest.mark.parametrize("path", ["/api/v1/runs/{a}/compare/999", "/api/v1/runs/999/compare/{a}"])
def test_an_unknown_run_is_404_not_found(app, client, path):
    a = add_run(app, BEFORE)
    answer = client.get(path.format(a=a))
    assert answer.status_code == 404
    assert answer.json["error"]["code"] == "not_found" and "#999" in answer.json["error"]["message"]
    page = client.get(path.format(a=a).replace("/api/v1", ""))
    assert page.status_code == 404 and b"#999" in page.data


def test_the_page_shows_each_bucket_with_its_count_links_to_each_test_and_both_runs(app, client):
    before = {**BEFORE, "t.py::test_p[a/b c?#%]": ("failed", 0.1)}
    after = {**AFTER, "t.py::test_p[a/b c?#%]": ("passed", 0.1)}
    a, b = add_run(app, before, state="failed"), add_run(app, after, state="failed")
    page = client.get(f"/runs/{a}/compare/{b}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for key, count in (("fixed", 3), ("new_failures", 2), ("still_failing", 3), ("added", 2), ("removed", 1)):
        section = re.search(rf'<section id="{key}".*?</section>', html, re.S).group(0)
        assert f"({count})" in section
        assert len(re.findall(r'<li><a href="/tests/', section)) == count
    assert 'href="/tests/t.py::fixed_f"' in html
    assert 'href="/tests/t.py::test_p%5Ba/b%20c%3F%23%25%5D"' in html  # / and : kept; ? # % [ ] and spaces escaped
    slower = re.search(r'<section id="slower".*?</section>', html, re.S).group(0)
    assert "(2)" in slower and "0.200 s" in slower and "2.200 s" in slower and "1.600 s" in slower
    assert slower.index("t.py::slowest") < slower.index("t.py::slower")
    assert f'href="/runs/{a}"' in html and f'href="/runs/{b}"' in html
    assert "<script" not in html.split("</main>")[0].split("<main")[-1]


def test_the_page_says_none_for_an_empty_bucket(app, client):
    a, b = add_run(app, {"t.py::x": ("passed", 0.1)}), add_run(app, {"t.py::x": ("passed", 0.1)})
    html = client.get(f"/runs/{a}/compare/{b}").get_data(as_text=True)
    assert html.count('<p class="empty">None.</p>') == 6


def link_of(client, run_id: int) -> str | None:
    html = client.get(f"/runs/{run_id}").get_data(as_text=True)
    found = re.search(r'<a href="(/runs/\d+/compare/\d+)">\s*compare with the previous run of the same files on this '
                      r'environment</a>', html)
    return found and found.group(1)


def test_the_run_page_links_to_the_previous_finished_run_of_the_same_files_on_the_same_environment(app, client):
    first = add_run(app, BEFORE)
    assert link_of(client, first) is None  # nothing before it
    older = add_run(app, BEFORE, state="failed")
    add_run(app, BEFORE, environment_id=2)                   # another environment
    add_run(app, BEFORE, files=FILES[:1])                    # other files
    add_run(app, BEFORE, files=FILES + ["sample_tests/x.py"])
    add_run(app, BEFORE, state="running")                    # not finished
    add_run(app, BEFORE, state="queued")
    this = add_run(app, AFTER)
    add_run(app, BEFORE)                                     # later: never the previous one
    assert link_of(client, this) == f"/runs/{older}/compare/{this}"
    assert link_of(client, older) == f"/runs/{first}/compare/{older}"
    reordered = add_run(app, AFTER, files=list(reversed(FILES)), state="error")  # the same files, in another order
    assert link_of(client, reordered) == f"/runs/{this + 1}/compare/{reordered}"


def test_no_link_when_no_earlier_run_had_the_same_files_there(app, client):
    add_run(app, BEFORE, environment_id=2)
    add_run(app, BEFORE, files=FILES[:1])
    add_run(app, BEFORE, state="running")
    this = add_run(app, AFTER, state="running")
    assert link_of(client, this) is None
    assert "compare with the previous run" not in client.get(f"/runs/{this}").get_data(as_text=True)


def test_previous_run_looks_past_other_files_but_only_among_the_last_finished_runs(app):
    def previous_of_next_run():
        with app.app_context():
            last = db.session.scalar(select(func.max(RunRow.id)))
            found = compare.previous_run(RunRow(id=last + 1, environment_id=1, test_files=list(FILES)))
            return found and found.id

    wanted = add_run(app, state="cancelled")
    for _ in range(compare.PREVIOUS_SCAN - 1):
        add_run(app, files=FILES[:1], state="failed")
        add_run(app, state="running")  # unfinished runs do not count towards the scan
    assert previous_of_next_run() == wanted
    add_run(app, files=FILES[:1], state="success")  # the wanted run is now further back than the scan goes
    assert previous_of_next_run() is None


def test_a_viewer_may_compare_and_an_anonymous_caller_may_not(app, as_role, anon_client):
    a, b = add_run(app, BEFORE), add_run(app, AFTER)
    viewer = as_role("viewer")
    assert viewer.get(f"/api/v1/runs/{a}/compare/{b}").json == EXPECTED
    assert viewer.get(f"/runs/{a}/compare/{b}").status_code == 200
    refused = anon_client.get(f"/api/v1/runs/{a}/compare/{b}")
    assert refused.status_code == 401 and refused.json["error"]["code"] == "unauthorized"
    assert "t.py" not in refused.get_data(as_text=True)
    page = anon_client.get(f"/runs/{a}/compare/{b}")
    assert page.status_code == 302 and "/login" in page.headers["Location"]


@pytest.mark.parametrize("nodeid", ["t.py::test_x", "dir/sub/test_a.py::TestK::test_p[a/b c?#%&'\"<>]",
                                    "uploads/alice/test_ü.py::test_é[1-2]", "t.py::test[..]"])
def test_a_test_link_leads_back_to_its_nodeid_as_url_for_would_build_it(app, nodeid):
    """The comparison links each test to its history page through ``url_for``: the link routes back to it."""
    from urllib.parse import unquote

    from flask import url_for

    with app.test_request_context():
        href = url_for("testhistory.detail", nodeid=nodeid)
    adapter = app.url_map.bind("localhost")
    assert "?" not in href and "#" not in href and " " not in href
    assert adapter.match(unquote(href)) == ("testhistory.detail", {"nodeid": nodeid})
