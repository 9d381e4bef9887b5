"""The charts on the run, environment and overview pages: with no data, one point and many, each drawing the
numbers its table lists; the overview's live "now" panel: what it counts, where each number links, how it polls."""
from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest

from conftest import make_workload
from webapp.db import utcnow
from webapp.extensions import db
from webapp.main.pages import NOW_AFTER
from webapp.models import EventRow, MigrationRow, RunRow

HX = {"HX-Request": "true"}
FILES, OTHER = ["sample_tests/test_passing.py"], ["sample_tests/test_failing.py"]
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")


def add_runs(app, *runs: dict) -> list[int]:
    with app.app_context():
        rows = [RunRow(**{"username": "admin", "environment_id": 1, "test_files": FILES, **r}) for r in runs]
        db.session.add_all(rows)
        db.session.commit()
        return [r.id for r in rows]


def finished(env=1, files=FILES, state="success", ran=10.0, waited=1.0, end=None, **more) -> dict:
    end = end or utcnow() - timedelta(minutes=1)
    start = end - timedelta(seconds=ran)
    return {"environment_id": env, "test_files": files, "state": state, "finished_at": end, "started_at": start,
            "created_at": start - timedelta(seconds=waited), **more}


def figure(page: str, caption: str) -> str:
    found = re.search(r'<figure class="chart[^"]*">\s*<figcaption>' + re.escape(caption) + r".*?</figure>", page, re.S)
    assert found, caption
    return found.group(0)


def rows(fig: str) -> list[list[str]]:
    """The cells of the figure's table, tags stripped."""
    table = re.search(r"<tbody>(.*?)</tbody>", fig, re.S).group(1)
    return [[html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td>(.*?)</td>", r, re.S)]
            for r in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)]


def attrs(fig: str, tag: str, *names: str) -> list[tuple]:
    return [tuple(html.unescape(re.search(rf'{n}="([^"]*)"', a).group(1)) for n in names)
            for a in re.findall(rf"<{tag}\b([^>]*)>", fig) if all(f'{n}="' in a for n in names)]


def no_inline_style(page: str):
    svg = "".join(re.findall(r"<svg.*?</svg>", page, re.S))
    assert " style=" not in svg and "<script" not in svg


# ---- the run page ----------------------------------------------------------------------------------------

def test_a_first_run_shows_one_cell_and_no_duration_yet(client, app):
    [run] = add_runs(app, {"state": "queued"})
    page = client.get(f"/runs/{run}").get_data(as_text=True)
    strip = figure(page, "Outcome of the last 1 runs")
    assert attrs(strip, "rect", "data-label", "data-state") == [(f"#{run}", "queued")]
    assert "chart-current" in strip and rows(strip) == [[f"#{run} (this one)", "queued"]]
    assert "No data yet" in figure(page, "Duration of the last 0 finished runs") and 'role="img"' in strip


def test_one_finished_run_is_one_point(client, app):
    [run] = add_runs(app, finished(ran=12.34))
    fig = figure(client.get(f"/runs/{run}").get_data(as_text=True), "Duration of the last 1 finished runs")
    assert attrs(fig, "circle", "data-label", "data-value") == [(f"#{run}", "12.3")]
    assert rows(fig) == [[f"#{run}", "12.3 s"]] and "<path" not in fig


def test_the_run_page_charts_the_last_30_runs_of_the_same_files_on_any_environment(client, app):
    states = ["success", "failed", "error", "cancelled"]
    ids = add_runs(app, *(finished(env=1 + i % 2, state=states[i % 4], ran=i + 0.5) for i in range(35)),
                   finished(files=OTHER, ran=99), finished(files=FILES[::-1] + OTHER, ran=98))
    same, current = ids[:35], ids[20]
    page = client.get(f"/runs/{current}").get_data(as_text=True)
    strip = figure(page, "Outcome of the last 30 runs of these files")
    cells = attrs(strip, "rect", "data-label", "data-state")
    assert cells == [(f"#{i}", states[same.index(i) % 4]) for i in same[5:]]  # oldest left, newest right
    assert re.findall(r'<a href="/runs/(\d+)"><rect', strip) == [str(i) for i in same[5:]]
    assert re.findall(r'data-label="#(\d+)"[^>]*><title>[^<]*\(this one\)', strip) == [str(current)]
    assert [r[1] for r in rows(strip)] == [c[1] for c in cells]
    line = figure(page, "Duration of the last 30 finished runs of these files")
    points = attrs(line, "circle", "data-label", "data-value")
    assert points == [(f"#{i}", str(same.index(i) + 0.5)) for i in same[5:]]
    assert rows(line) == [[label, f"{value} s"] for label, value in points]  # the drawing's numbers = the table's
    assert "On environments 1, 2." in " ".join(page.split())  # other files' runs (99 s, 98 s) are not drawn
    ys = [float(y) for y in re.findall(r'cy="([\d.]+)"', line)]
    assert ys == sorted(ys, reverse=True)  # each run took longer: the line climbs
    no_inline_style(page)


def test_an_older_run_sees_the_runs_up_to_itself(client, app):
    ids = add_runs(app, *(finished(ran=1) for _ in range(40)))
    strip = figure(client.get(f"/runs/{ids[3]}").get_data(as_text=True), "Outcome of the last 4 runs")
    assert [c[0] for c in attrs(strip, "rect", "data-label")] == [f"#{i}" for i in ids[:4]]


def test_a_status_poll_does_not_draw_the_charts(client, app):
    [run] = add_runs(app, finished())
    assert "chart" not in client.get(f"/runs/{run}", headers=HX).get_data(as_text=True)


# ---- the environment page --------------------------------------------------------------------------------

def test_an_unused_environment_says_no_data_yet(client):
    page = client.get("/environments/7").get_data(as_text=True)
    for caption in ("Busy share per hour", "Busy share per day", "Wait before start per day"):
        assert "No data yet" in figure(page, caption)
    assert "chart" not in client.get("/environments/7", headers=HX).get_data(as_text=True)


def test_busy_share_and_wait_percentiles_match_their_tables(client, app):
    now = utcnow()
    hour = now.replace(minute=0, second=0, microsecond=0)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    waits = [1, 2, 3, 4, 100]
    add_runs(app, finished(env=3, end=hour - timedelta(minutes=30), ran=1800),  # half of the previous hour
             *(finished(env=3, end=today - timedelta(days=2) + timedelta(seconds=10 + w), ran=1, waited=w)
               for w in waits),
             finished(env=4, end=hour - timedelta(minutes=30), ran=1800))  # another environment: not counted
    page = client.get("/environments/3").get_data(as_text=True)
    hourly = figure(page, "Busy share per hour, last 24 hours")
    bars = attrs(hourly, "rect", "data-label", "data-value", "height")
    assert len(bars) == 24 and bars[-1][0] == hour.strftime("%H:00")
    assert bars[-2][1] == "50.0" and {b[1] for b in bars[:-2]} <= {"0.0"}
    assert [r[1] for r in rows(hourly)] == [f"{b[1]}%" for b in bars]
    tallest = max(float(b[2]) for b in bars)
    assert float(bars[-2][2]) == tallest > 0
    wait = figure(page, "Wait before start per day")
    day = (today - timedelta(days=2)).strftime("%m-%d")
    drawn = {(label, series): value for label, series, value in attrs(wait, "rect", "data-label", "data-series",
                                                                        "data-value")}
    assert drawn[(day, "p50")] == "3.0" and drawn[(day, "p95")] == "100.0"
    table = {r[0]: r[1:] for r in rows(wait)}
    assert table[day] == ["3.0 s", "100.0 s"] and len(table) == 7
    assert all(table[label] == ([f"{drawn[(label, 'p50')]} s", f"{drawn[(label, 'p95')]} s"]
                                if drawn[(label, "p50")] else ["—", "—"]) for label in table)
    assert "6 runs started in these 7 days" in page
    no_inline_style(page)


def test_busy_share_covers_each_bucket_by_the_runs_in_it():
    from webapp.environments.usage import busy_share

    t0 = utcnow().replace(minute=0, second=0, microsecond=0)
    hour = timedelta(hours=1)
    buckets = [(t0, t0 + hour), (t0 + hour, t0 + 2 * hour), (t0 + 2 * hour, t0 + 2 * hour)]
    runs = [(t0 + hour / 2, t0 + hour + hour / 4), (t0 - hour, t0 + hour / 4)]
    assert busy_share(runs, buckets) == [75.0, 25.0, 0.0] and busy_share([], buckets[:1]) == [0.0]


# ---- the overview ----------------------------------------------------------------------------------------

def test_the_overview_with_nothing_yet(client):
    response = client.get("/")
    page = response.get_data(as_text=True)
    assert "No data yet" in figure(page, "Test runs per day by outcome")
    assert "No data yet" in figure(page, "Migrations per day by outcome")
    assert re.search(r'<strong>0</strong> migrations running', page)
    assert response.headers["Content-Security-Policy"] == CSP


def test_runs_and_migrations_per_day_match_their_tables(client, app):
    today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    day = lambda k: today - timedelta(days=k) + timedelta(seconds=5)  # noqa: E731
    add_runs(app, *(finished(state=s, end=day(k)) for k, s in [(0, "success"), (0, "failed"), (0, "failed"),
                                                              (3, "error"), (3, "cancelled"), (20, "success")]))
    source = make_workload(client)["id"]
    with app.app_context():
        base = MigrationRow(source_id=source, selected=["C:\\"], cloud_type="aws", cloud_username="u",
                            cloud_password_enc="x")
        db.session.add_all([MigrationRow(**{c: getattr(base, c) for c in ("source_id", "selected", "cloud_type",
                                                                            "cloud_username", "cloud_password_enc")},
                                         state=s, finished_at=day(k)) for k, s in [(1, "error"), (0, "success")]])
        db.session.commit()
    page = client.get("/").get_data(as_text=True)
    runs = figure(page, "Test runs per day by outcome, last 14 days")
    table = {r[0]: r[1:] for r in rows(runs)}
    label = lambda k: (today - timedelta(days=k)).strftime("%m-%d")  # noqa: E731
    assert len(table) == 14 and table[label(0)] == ["1", "2", "0", "0", "3"] and table[label(3)] == [
        "0", "0", "1", "1", "2"]
    assert sum(int(r[-1]) for r in table.values()) == 5  # the run of 20 days ago is out of the window
    drawn = attrs(runs, "rect", "data-series", "data-value", "height")
    groups = dict(re.findall(r'<g data-label="([^"]+)" data-total="(\d+)"', runs))
    assert {k: [v[-1]] for k, v in table.items()} == {k: [v] for k, v in groups.items()}
    assert sorted((s, v) for s, v, _ in drawn) == sorted(
        (name, value) for row in table.values() for name, value in zip(
            ("success", "failed", "error", "cancelled"), row[:4]) if value != "0")
    unit = max(float(h) for _, _, h in drawn) / 2  # the tallest part: the 2 failed runs of today
    assert all(abs(float(h) - unit * int(v)) < 0.05 for _, v, h in drawn)
    migrations = figure(page, "Migrations per day by outcome")
    assert {r[0]: r[1:] for r in rows(migrations)}[label(1)] == ["0", "1", "1"]
    no_inline_style(page)


def test_the_now_panel_counts_the_three_jobs_and_links_to_their_filtered_lists(client, app):
    old = utcnow() - timedelta(days=2)
    add_runs(app, {"state": "running", "started_at": utcnow()}, {"state": "queued", "environment_id": 1},
             {"state": "queued", "environment_id": 1}, finished(state="failed"), finished(state="failed"),
             finished(state="error"), finished(state="failed", end=old))
    source = make_workload(client)["id"]
    with app.app_context():
        cols = dict(source_id=source, selected=["C:\\"], cloud_type="aws", cloud_username="u", cloud_password_enc="x")
        db.session.add_all([MigrationRow(**cols, state="running"), MigrationRow(**cols, state="error",
                                                                                finished_at=utcnow()),
                            MigrationRow(**cols, state="error", finished_at=old)])
        db.session.add_all(EventRow(id=f"00000000-0000-0000-0000-00000000000{i}", user_id="u", description="d",
                                    status=s) for i, s in enumerate(["pending", "pending", "failed", "processed"]))
        db.session.commit()
    page = client.get("/").get_data(as_text=True)
    panel = re.search(r'<section id="overview-now".*?</section>', page, re.S).group(0)
    found = {html.unescape(href): (int(n), text.strip()) for href, n, text in
             re.findall(r'<a class="card[^"]*" href="([^"]+)"><strong>(\d+)</strong>([^<]*)', panel)}
    assert found == {
        "/migrations/?state=running": (1, "migrations running"), "/runs/?state=running": (1, "test runs running"),
        "/environments/": (1, "of 100 environments busy"), "/runs/?state=queued": (2, "runs waiting"),
        "/events/?status=pending": (2, "events pending"), "/runs/?state=failed": (2, "runs failed"),
        "/runs/?state=error": (1, "runs ended in error"), "/migrations/?state=error": (1, "migrations ended in error"),
        "/events/?status=failed": (1, "events failed")}
    for href, (n, _) in found.items():  # each list exists, filtered (the 24 h counts are a part of it)
        listed = client.get(href)
        assert listed.status_code == 200, href
    errors = client.get("/migrations/?state=error").get_data(as_text=True)
    assert len(re.findall(r'<span class="badge badge-error">', errors)) == 2
    assert "badge-running" not in errors.split("<table>")[1]


def test_the_migration_list_refuses_an_unknown_state(client):
    response = client.get("/migrations/?state=nope")
    assert response.status_code == 422 and "Unknown state" in response.get_data(as_text=True)


def test_the_now_panel_polls_slower_while_nothing_changes_and_fast_again_on_a_change(client, app):
    page = client.get("/").get_data(as_text=True)
    url, every = re.search(r'id="overview-now".*?hx-get="([^"]+)"\s+hx-trigger="every (\w+)"', page, re.S).groups()
    assert (html.unescape(url), every) == ("/?seen=" + html.unescape(url).split("seen=")[1], "5s")
    seen = []
    for _ in range(NOW_AFTER + 1):
        fragment = client.get(html.unescape(url), headers=HX).get_data(as_text=True)
        assert fragment.lstrip().startswith("<section id=\"overview-now\"") and "<html" not in fragment
        url, every = re.search(r'hx-get="([^"]+)"\s+hx-trigger="every (\w+)"', fragment).groups()
        seen.append(every)
    assert seen[0] == "5s" and seen[-1] == "10s"
    add_runs(app, {"state": "queued"})
    fragment = client.get(html.unescape(url), headers=HX).get_data(as_text=True)
    assert 'hx-trigger="every 5s"' in fragment and re.search(r"<strong>1</strong> runs waiting", fragment)


@pytest.mark.parametrize("path", ["/", "/environments/1"])
def test_the_chart_pages_keep_the_strict_csp(client, path):
    response = client.get(path)
    assert response.status_code == 200 and response.headers["Content-Security-Policy"] == CSP


def test_a_viewer_sees_the_charts_and_the_panel(as_role):
    viewer = as_role("viewer")
    page = viewer.get("/").get_data(as_text=True)
    assert 'id="overview-now"' in page and "Test runs per day by outcome" in page
