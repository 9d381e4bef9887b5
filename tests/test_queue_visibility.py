"""Queue visibility (issue 13): who waits where, in the order they will start (priority, aging, pool runs),
a waiting run's position and start estimate, the median wait of the last hour, the new-run form's figures and
the pools API. Pool runs are inserted as rows (queued, environment_id NULL, a pool): their dispatch is not
this feature's, and nothing here dispatches them."""
from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from webapp.db import utcnow
from webapp.extensions import db
from webapp.models import EnvironmentRow, RunRow

FILES = ["sample_tests/test_passing.py"]


@pytest.fixture
def began() -> float:
    """When the test began (monotonic): its rows were written after this."""
    return time.monotonic()


def counting_down(expected: float, began: float):
    """An estimate that was ``expected`` seconds when the rows were written and has counted down since: by
    anything from 0 to the time the test has taken so far (call it after the request), plus a second for
    rounding. A loaded machine can take seconds between the setup and the read."""
    lag = time.monotonic() - began
    return pytest.approx(expected - lag / 2, abs=lag / 2 + 1)


def add(app, environment_id=None, *, pool=None, priority="normal", state="queued", ago=0.0, dispatched=None,
        started=None, finished=None, lock_token=None) -> int:
    """A run row; ``ago``, ``dispatched``, ``started``, ``finished``: seconds before now (None: not set)."""
    with app.app_context():
        now = utcnow()
        at = lambda s: None if s is None else now - timedelta(seconds=s)  # noqa: E731
        row = RunRow(username="admin", environment_id=environment_id, pool=pool, priority=priority,
                     test_files=FILES, state=state, created_at=at(ago), dispatched_at=at(dispatched),
                     started_at=at(started), finished_at=at(finished), lock_token=lock_token)
        db.session.add(row)
        db.session.commit()
        return row.id


def label(app, labels, *ids, enabled=True):
    with app.app_context():
        db.session.execute(update(EnvironmentRow).where(EnvironmentRow.id.in_(ids))
                           .values(labels=labels, enabled=enabled))
        db.session.commit()


def history(app, environment_id, *durations):
    """Finished runs there, newest last, with these durations (seconds)."""
    for n, seconds in enumerate(durations):
        end = 600 - n
        add(app, environment_id, state="success", ago=end + seconds + 5, dispatched=end + seconds + 1,
            started=end + seconds, finished=end, lock_token=f"t-{environment_id}-{n}")


def env(client, environment_id) -> dict:
    response = client.get(f"/api/v1/environments/{environment_id}")
    assert response.status_code == 200, response.json
    return response.json


def run(client, run_id) -> dict:
    return client.get(f"/api/v1/runs/{run_id}").json


def text(response) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def words(response) -> str:
    """What a reader sees: the text without its tags."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", response.get_data(as_text=True)))


# --- the queue of an environment -----------------------------------------------------------------------------

def test_an_environments_queue_is_in_start_order_with_priority_aging_and_its_pool_runs(app, client):
    aging = app.config["PRIORITY_AGING_MINUTES"] * 60
    label(app, ["oracle"], 5, 6)
    label(app, ["oracle"], 7, enabled=False)
    current = add(app, 5, ago=300, dispatched=5, lock_token="run-held-5")  # given env 5, waits for a worker
    normal = add(app, 5, ago=60)
    pooled = add(app, pool="oracle", ago=50)
    high = add(app, 5, priority="high", ago=40)
    aged = add(app, 5, ago=aging + 60)  # a normal run that waited longer than the aging time counts as high
    elsewhere = add(app, pool="other", ago=30)
    on_six = add(app, 6, ago=20)
    body = env(client, 5)
    assert body["labels"] == ["oracle"]
    assert body["current_run_id"] == current and body["status"] == "busy"
    assert body["queue"] == [high, aged, normal, pooled]
    assert env(client, 6)["queue"] == [pooled, on_six]
    assert env(client, 7)["queue"] == []  # disabled: no pool run starts there
    assert elsewhere not in body["queue"]
    items = {e["id"]: e for e in client.get("/api/v1/environments").json["items"]}
    assert items[5]["queue"] == body["queue"] and items[6]["queue"] == [pooled, on_six]


def test_the_median_wait_of_the_last_hour(app, client):
    for wait, given in ((10, 100), (20, 200), (60, 300)):  # dispatched 100..300 s ago after waiting 10..60 s
        add(app, 8, state="success", ago=given + wait, dispatched=given, started=given - 1, finished=given - 30,
            lock_token="t")
    add(app, 8, state="running", ago=330, started=300, lock_token="t2")  # no dispatched_at: started_at counts
    add(app, 8, state="success", ago=7300, dispatched=7200, started=7199, finished=7000, lock_token="t3")  # too old
    add(app, 8, ago=5)  # still waiting: not dispatched
    add(app, 9, state="success", ago=400, dispatched=100, started=99, finished=50, lock_token="t4")
    assert env(client, 8)["wait_p50_seconds"] == pytest.approx(25.0)  # 10, 20, 30, 60
    assert env(client, 9)["wait_p50_seconds"] == pytest.approx(300.0)
    assert env(client, 10)["wait_p50_seconds"] is None
    items = {e["id"]: e for e in client.get("/api/v1/environments").json["items"]}
    assert items[8]["wait_p50_seconds"] == pytest.approx(25.0) and items[10]["wait_p50_seconds"] is None


# --- a waiting run's position and estimate ---------------------------------------------------------------

def test_a_waiting_runs_position_and_estimate_follow_the_real_order(app, client, began):
    history(app, 9, 100, 200, 300)  # typical: 200 s
    add(app, 9, state="running", ago=90, dispatched=61, started=60, lock_token="run-9")  # 140 s to go
    first, second = add(app, 9, ago=30), add(app, 9, ago=20)
    assert (run(client, first)["queue_position"], run(client, second)["queue_position"]) == (1, 2)
    assert run(client, first)["estimated_start_seconds"] == counting_down(140, began)
    assert run(client, second)["estimated_start_seconds"] == counting_down(340, began)
    urgent = add(app, 9, priority="high", ago=1)
    assert [run(client, r)["queue_position"] for r in (urgent, first, second)] == [1, 2, 3]
    assert run(client, second)["estimated_start_seconds"] == counting_down(540, began)
    listed = {r["id"]: r for r in client.get("/api/v1/runs?environment_id=9").json["items"]}
    assert (listed[second]["queue_position"], listed[second]["estimated_start_seconds"]) == (3, counting_down(540, began))
    done = next(i for i, r in listed.items() if r["state"] == "success")
    assert (listed[done]["queue_position"], listed[done]["estimated_start_seconds"]) == (None, None)


def test_a_pool_runs_position_counts_every_run_that_competes_for_its_environments(app, client, began):
    label(app, ["gpu"], 10, 11)
    for environment_id, elapsed in ((10, 30), (11, 90)):
        history(app, environment_id, 120, 120)
        add(app, environment_id, state="running", ago=elapsed + 5, started=elapsed, lock_token=f"r{environment_id}")
    p1, e1, p2 = add(app, pool="gpu", ago=30), add(app, 11, ago=20), add(app, pool="gpu", ago=10)
    assert [run(client, r)["queue_position"] for r in (p1, e1, p2)] == [1, 2, 3]
    assert run(client, p1)["environment_id"] is None
    # the first of its two environments frees in 30 s; the two runs ahead of p2 share both: 30 + 2 · 120 / 2
    assert run(client, p1)["estimated_start_seconds"] == counting_down(30, began)
    assert run(client, p2)["estimated_start_seconds"] == counting_down(150, began)
    assert run(client, e1)["estimated_start_seconds"] == counting_down(150, began)  # env 11: 30 + 120
    given = add(app, 10, ago=5, lock_token="run-given")  # not running: holds nothing in this test's Redis
    assert (run(client, given)["queue_position"], run(client, given)["estimated_start_seconds"]) == (0, 0)


def test_a_held_environment_frees_when_its_hold_ends(app, client, began):
    history(app, 12, 60)
    with app.app_context():
        db.session.execute(update(EnvironmentRow).where(EnvironmentRow.id == 12).values(
            hold_by="op", hold_reason="patching", hold_until=utcnow() + timedelta(minutes=10)))
        db.session.commit()
    waiting = add(app, 12, ago=5)
    assert run(client, waiting)["estimated_start_seconds"] == counting_down(600, began)


def test_no_estimate_without_a_finished_run_to_go_by(app, client):
    add(app, 13, state="running", ago=10, started=5, lock_token="r13")
    waiting = add(app, 13, ago=1)
    body = run(client, waiting)
    assert (body["queue_position"], body["estimated_start_seconds"]) == (1, None)
    page = words(client.get(f"/runs/{waiting}"))
    assert "Position 1 in the queue for environment 13 · no estimate yet" in page


def test_the_run_page_shows_position_and_estimate_live_and_stops_when_it_leaves_the_queue(app, client):
    history(app, 14, 100, 200, 300)
    add(app, 14, state="running", ago=90, started=60, lock_token="run-14")
    add(app, 14, ago=30)
    second = add(app, 14, ago=20)
    page = words(client.get(f"/runs/{second}"))
    assert "Position 2 in the queue for environment 14 · starts in about 6 min" in page  # 140 + 200 s
    fragment = text(client.get(f"/runs/{second}", headers={"HX-Request": "true"}))
    assert 'id="run-status"' in fragment and "<html" not in fragment
    assert "Position 2 in the queue" in fragment and 'hx-trigger="every' in fragment
    assert client.post(f"/api/v1/runs/{second}/cancel").status_code == 202
    ended = text(client.get(f"/runs/{second}", headers={"HX-Request": "true"}))
    assert "Position" not in ended and "hx-trigger" not in ended


def test_a_pool_runs_page_names_its_pool(app, client):
    label(app, ["win"], 15)
    history(app, 15, 60)
    add(app, 15, state="running", ago=10, started=5, lock_token="r15")  # 55 s to go
    waiting = add(app, pool="win", ago=1)
    # its status fragment (the whole page of a pool run is the pools feature's: it links its environment)
    status = words(client.get(f"/runs/{waiting}", headers={"HX-Request": "true"}))
    assert "Position 1 in the queue for pool win · starts in less than a minute" in status


# --- the environment pages --------------------------------------------------------------------------------

def test_the_grid_counts_pool_runs_for_each_environment_they_could_use(app, client):
    label(app, ["lab"], 16, 17)
    exact = add(app, 16, ago=9)
    pooled = add(app, pool="lab", ago=5, priority="high")
    grid = text(client.get("/environments/"))
    cells = {}
    for cell in grid.split('<li class="cell')[1:]:
        queue = re.search(r'<span class="cell-queue">([^<]*)</span>', cell)
        cells[re.search(r"<strong>(\d+)</strong>", cell).group(1)] = queue and queue.group(1)
    assert cells["16"] == "2 waiting (1 via a pool)" and cells["17"] == "1 waiting (1 via a pool)"
    assert cells["18"] is None
    page = text(client.get("/environments/16"))
    waiting = page[page.index("<h2>Waiting</h2>"):page.index("<h2>Recent runs</h2>")]
    assert waiting.index(f"run #{pooled}") < waiting.index(f"run #{exact}")  # high first
    assert "pool lab" in waiting and "high priority" in waiting


# --- the new-run form's figures ---------------------------------------------------------------------------

def test_the_queue_info_fragment_for_an_environment_and_a_pool(app, client):
    label(app, ["qa"], 18, 19)
    add(app, 18, state="success", ago=160, dispatched=100, started=99, finished=50, lock_token="t")  # waited 60 s
    add(app, 18, state="running", ago=70, started=10, lock_token="r18")  # waited 60 s too
    add(app, 18, ago=5)
    add(app, pool="qa", ago=4)
    for headers in ({}, {"HX-Request": "true"}):
        response = client.get("/runs/queue-info?environment_id=18&csrf_token=x&test_files=a.py", headers=headers)
        assert response.status_code == 200
        body = text(response)
        assert body.strip().startswith('<p id="queue-info"') and "<html" not in body
        assert "Environment 18: 2 waiting · median wait last hour: about 1 min" in body
    assert "Pool qa: 2 waiting · median wait last hour: about 1 min" in text(client.get("/runs/queue-info?pool=qa"))
    assert "Environment 20: 0 waiting · median wait last hour: none started in the last hour" in text(
        client.get("/runs/queue-info?environment_id=20"))
    assert "no enabled environment carries this label yet" in text(client.get("/runs/queue-info?pool=nowhere"))
    assert "Choose an environment" in text(client.get("/runs/queue-info?environment_id=&pool="))


@pytest.mark.parametrize("query, message", [
    ("environment_id=abc", "Choose an environment from 1 to 100."),
    ("environment_id=101", "Choose an environment from 1 to 100."),
    ("environment_id=99999999999999999999", "Choose an environment from 1 to 100."),
    ("pool=Not%20A%20Label", "A label is lower-case letters"),
    ("pool=" + "a" * 33, "A label is lower-case letters"),
    ("environment_id=3&pool=qa", "Choose an environment or a pool, not both."),
])
def test_bad_queue_info_arguments_are_refused_clearly(client, query, message):
    for headers in ({}, {"HX-Request": "true"}):
        response = client.get(f"/runs/queue-info?{query}", headers=headers)
        assert response.status_code == 422 and message in response.get_data(as_text=True)


def test_the_new_run_form_asks_for_the_figures_on_a_change_and_still_posts(app, client):
    page = client.get("/runs/new").get_data(as_text=True)
    form = re.search(r'<form method="post" action="/runs/new"[^>]*>', page).group(0)
    assert 'hx-get="/runs/queue-info"' in form and 'hx-trigger="change from:#environment_id' in form
    assert 'hx-params="environment_id,pool"' in form and 'hx-target="#queue-info"' in form
    assert 'id="queue-info"' in page and "Choose an environment" in page
    add(app, 21, state="running", ago=10, started=5, lock_token="r21")
    add(app, 21, ago=3)
    chosen = text(client.get(f"/runs/new?environment_id=21&test_files={FILES[0]}"))
    assert "Environment 21: 1 waiting" in chosen and '<option selected value="21">' in chosen
    assert f'<option value="{FILES[0]}" selected>' in chosen  # the files picked before asking stay picked
    assert "Choose an environment" in text(client.get("/runs/new?environment_id=nope"))  # ignored on the page
    posted = client.post("/runs/new", data={"environment_id": "22", "test_files": FILES, "save": "Start run"})
    assert posted.status_code == 303
    refused = client.post("/runs/new", data={"environment_id": "21", "test_files": [], "save": "Start run"})
    assert refused.status_code == 422 and "Environment 21: 1 waiting" in text(refused)


# --- the pools API ------------------------------------------------------------------------------------------

def test_a_pool_in_json(app, client):
    label(app, ["db"], 23, 24)
    label(app, ["db"], 25, enabled=False)
    add(app, 23, state="success", ago=130, dispatched=100, started=99, finished=50, lock_token="t")  # waited 30 s
    p1, e1, other = add(app, pool="db", ago=9), add(app, 24, ago=8), add(app, 26, ago=7)
    body = client.get("/api/v1/pools/db").json
    assert body == {"label": "db", "environments": [23, 24], "queue": [p1, e1], "waiting": 2,
                    "wait_p50_seconds": pytest.approx(30.0)}
    assert other not in body["queue"]
    assert client.get("/api/v1/pools/none-yet").json == {"label": "none-yet", "environments": [], "queue": [],
                                                         "waiting": 0, "wait_p50_seconds": None}
    bad = client.get("/api/v1/pools/DB")
    assert bad.status_code == 422 and bad.json["error"]["code"] == "validation_error"
    assert "label" in bad.json["error"]["fields"]


# --- who may ask --------------------------------------------------------------------------------------------

def test_a_viewer_reads_the_figures_and_nobody_signed_in_does(app, as_role, anon_client):
    viewer = as_role("viewer")
    assert viewer.get("/runs/queue-info?environment_id=3").status_code == 200
    assert viewer.get("/api/v1/pools/gpu").status_code == 200
    assert viewer.get("/api/v1/environments/3").json["wait_p50_seconds"] is None
    assert viewer.get("/runs/new").status_code == 403  # the form itself stays the operators'
    anonymous = anon_client.get("/runs/queue-info?environment_id=3")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    assert anon_client.get("/api/v1/pools/gpu").status_code == 401
