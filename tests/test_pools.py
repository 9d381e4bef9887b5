"""Pools and priorities (issue 13, sections 1 and 2), with real Redis: a pool run takes the first free enabled
environment of its label or waits; a freed environment goes to the first of the runs that could use it (runs
for it and pool runs alike) by effective priority, then creation order; holds; labels; validation; roles; and
200 pool runs over 10 environments on 2 real workers that never overlap."""
from __future__ import annotations

import io
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from conftest import wait_until
from webapp.db import update as sql_update
from webapp.db import utcnow
from webapp.domain import pools
from webapp.extensions import db
from webapp.models import AuditRow, EnvironmentRow, RunRow

PASSING = "sample_tests/test_passing.py"


def label(app, labels: dict[int, list[str]]) -> None:
    with app.app_context():
        for env, values in labels.items():
            db.session.execute(sql_update(EnvironmentRow).where(EnvironmentRow.id == env).values(labels=values))
        db.session.commit()


def create(client, files=(PASSING,), **where):
    response = client.post("/api/v1/runs", json={"test_files": list(files), **where})
    assert response.status_code == 201, response.json
    return response.json


def row(app, run_id):
    with app.app_context():
        found = db.session.get(RunRow, run_id)
        db.session.expunge(found)
        return found


def end(app, run_id):
    """What a worker does when a run ends: record it (fenced by its token), release, hand the environment on."""
    from webapp.runs import dispatch

    with app.app_context():
        run = db.session.get(RunRow, run_id)
        token, env = run.lock_token, run.environment_id
        assert token, f"run {run_id} does not hold an environment"
        assert dispatch.finish(run_id, token, state="success")
        dispatch.release(env, token)


def holder(app, env):
    """The run given ``env`` (holding its lock), if any."""
    with app.app_context():
        return db.session.scalar(select(RunRow.id).where(RunRow.environment_id == env, RunRow.state == "queued",
                                                         RunRow.lock_token.is_not(None)))


def expected_next(app, env) -> int | None:
    """What sorting the waiting runs by ``domain.pools.order_key`` says ``env`` should start next."""
    with app.app_context():
        environment = db.session.get(EnvironmentRow, env)
        waiting = db.session.scalars(select(RunRow).where(RunRow.state == "queued", RunRow.lock_token.is_(None)))
        now, aging = utcnow(), app.config["PRIORITY_AGING_MINUTES"]
        could = [r for r in waiting if pools.can_use(r.environment_id, r.pool, env,
                                                     environment.labels if environment.enabled else [])]
        could.sort(key=lambda r: pools.order_key(r.id, r.priority, r.created_at, now, aging))
        return could[0].id if could else None


# --- the dispatch rule ---------------------------------------------------------------------------------------

def test_a_pool_run_takes_a_free_environment_of_its_label_or_waits_with_no_environment(app, client):
    label(app, {1: ["linux"], 2: ["linux", "gpu"], 3: ["gpu"]})
    first = create(client, pool="linux")
    assert (first["pool"], first["environment_id"], first["priority"]) == ("linux", 1, "normal")
    second = create(client, pool="linux")
    assert second["environment_id"] == 2
    third = create(client, pool="linux")
    assert third["environment_id"] is None and third["state"] == "queued"  # both linux environments busy
    page = client.get(f"/runs/{third['id']}")
    assert page.status_code == 200 and b"in the queue</strong> for pool linux" in page.data
    assert create(client, pool="gpu")["environment_id"] == 3
    end(app, first["id"])
    assert row(app, third["id"]).environment_id == 1 and holder(app, 1) == third["id"]
    assert client.get("/api/v1/runs", query_string={"pool": "linux"}).json["total"] == 3


def test_a_freed_environment_goes_to_its_runs_and_pool_runs_in_creation_order(app, client):
    label(app, {1: ["web"], 2: ["web"]})
    busy1, busy2 = create(client, environment_id=1)["id"], create(client, environment_id=2)["id"]
    x1 = create(client, environment_id=1)["id"]
    p2 = create(client, pool="web")["id"]
    x2 = create(client, environment_id=2)["id"]
    p3 = create(client, pool="web")["id"]
    x3 = create(client, environment_id=1)["id"]
    started = []
    for env, finished in ((1, busy1), (1, None), (2, busy2), (1, None), (2, None), (1, None)):
        finished = finished or holder(app, env)
        want = expected_next(app, env)
        end(app, finished)
        started.append(holder(app, env))
        assert started[-1] == want, "dispatch picks what sorting by domain.pools.order_key picks"
    assert started == [x1, p2, x2, p3, None, x3]  # env 2's last candidate went to env 1 (p3) already
    assert row(app, p2).environment_id == 1 and row(app, p3).environment_id == 1


def test_no_starvation_a_waiting_pool_run_is_not_passed_by_later_runs_for_the_same_environment(app, client):
    label(app, {4: ["db"]})
    create(client, environment_id=4)
    pooled = create(client, pool="db")["id"]
    later = [create(client, environment_id=4)["id"] for _ in range(3)]
    end(app, holder(app, 4))
    assert holder(app, 4) == pooled
    for run_id in later:
        end(app, holder(app, 4))
        assert holder(app, 4) == run_id


def test_high_goes_first_fifo_within_a_priority(app, client):
    create(client, environment_id=6)
    n1, h1, n2, h2 = (create(client, environment_id=6, priority=p)["id"] for p in ("normal", "high", "normal", "high"))
    order = []
    for _ in range(4):
        end(app, holder(app, 6))
        order.append(holder(app, 6))
    assert order == [h1, h2, n1, n2]


def test_a_normal_run_older_than_the_aging_time_counts_as_high(app, client):
    label(app, {7: ["ci"]})
    create(client, environment_id=7)
    old = create(client, pool="ci")["id"]
    high = create(client, environment_id=7, priority="high")["id"]
    with app.app_context():
        db.session.execute(sql_update(RunRow).where(RunRow.id == old)
                           .values(created_at=utcnow() - timedelta(minutes=app.config["PRIORITY_AGING_MINUTES"] + 1)))
        db.session.commit()
    assert expected_next(app, 7) == old
    end(app, holder(app, 7))
    assert holder(app, 7) == old
    end(app, old)
    assert holder(app, 7) == high


def test_a_held_environment_starts_nothing_pool_runs_go_elsewhere_until_release(app, client):
    label(app, {8: ["hw"], 9: ["hw"]})
    assert client.post("/api/v1/environments/8/hold", json={"minutes": 30, "reason": "maintenance"}).status_code == 200
    first = create(client, pool="hw")
    assert first["environment_id"] == 9  # env 8 comes first but is held
    waiting = create(client, pool="hw")["id"]
    exact = create(client, environment_id=8)["id"]
    from webapp.runs import dispatch

    with app.app_context():
        assert dispatch.dispatch(8) is None and dispatch.reap()["dispatched"] == 0
    assert row(app, waiting).environment_id is None and holder(app, 8) is None
    assert client.post("/api/v1/environments/8/release").status_code == 200
    assert holder(app, 8) == waiting and row(app, exact).lock_token is None
    end(app, waiting)
    assert holder(app, 8) == exact


def test_a_disabled_environment_takes_no_pool_runs(app, client):
    label(app, {10: ["solo"], 11: ["solo"]})
    assert client.patch("/api/v1/environments/10", json={"enabled": False}).status_code == 200
    assert create(client, pool="solo")["environment_id"] == 11
    assert client.patch("/api/v1/environments/11", json={"enabled": False}).status_code == 200
    refused = client.post("/api/v1/runs", json={"pool": "solo", "test_files": [PASSING]})
    assert refused.status_code == 422
    assert refused.json["error"]["fields"] == {"pool": ["No enabled environment has the label solo."]}


def test_labelling_a_free_environment_hands_it_to_a_waiting_pool_run_at_once(app, client):
    label(app, {14: ["late"]})
    create(client, environment_id=14)
    waiting = create(client, pool="late")["id"]
    assert row(app, waiting).environment_id is None
    assert client.patch("/api/v1/environments/15", json={"labels": ["late"]}).status_code == 200
    assert holder(app, 15) == waiting


def test_a_pool_run_given_back_to_the_queue_loses_its_environment(app, client):
    from webapp.runs import dispatch

    label(app, {12: ["back"]})
    run_id = create(client, pool="back")["id"]
    with app.app_context():
        dispatch.environment_lock(12).force_release()
        assert dispatch.environment_lock(12).acquire("someone-else")
        dispatch.reap()
    back = row(app, run_id)
    assert (back.lock_token, back.environment_id, back.pool) == (None, None, "back")
    with app.app_context():
        dispatch.environment_lock(12).force_release()
        dispatch.reap()
    assert holder(app, 12) == run_id


def test_rerun_keeps_pool_and_priority_and_the_end_event_names_the_pool(app, client):
    label(app, {13: ["re"]})
    create(client, environment_id=13)
    first = create(client, pool="re", priority="high")
    again = client.post(f"/api/v1/runs/{first['id']}/rerun")
    assert again.status_code in (200, 201), again.json
    assert (again.json["pool"], again.json["priority"]) == ("re", "high")
    cancelled = client.post(f"/api/v1/runs/{first['id']}/cancel").json
    assert cancelled["state"] == "cancelled" and cancelled["environment_id"] is None
    from webapp.models import EventRow

    with app.app_context():
        texts = list(db.session.scalars(select(EventRow.description)))
    assert any(f"Test run #{first['id']} for pool re ended cancelled" in t for t in texts)
    assert client.get(f"/runs/{first['id']}").status_code == 200 and client.get("/runs/").status_code == 200


# --- input, labels, roles --------------------------------------------------------------------------------------

@pytest.mark.parametrize("body, field, words", [
    ({"environment_id": 1, "pool": "linux"}, "pool", "not both"),
    ({}, "environment_id", "or a pool"),
    ({"pool": "Linux!"}, "pool", "A label is"),
    ({"pool": "nowhere"}, "pool", "No enabled environment has the label nowhere."),
    ({"environment_id": 1, "priority": "urgent"}, "priority", "Priority must be one of"),
])
def test_bad_run_targets_are_422_on_their_field(app, client, body, field, words):
    label(app, {1: ["linux"]})
    response = client.post("/api/v1/runs", json={"test_files": [PASSING], **body})
    assert response.status_code == 422 and list(response.json["error"]["fields"]) == [field], response.json
    assert words in response.json["error"]["fields"][field][0]
    assert client.get("/api/v1/runs").json["total"] == 0


def test_labels_are_patched_by_admins_shown_filtered_and_audited(app, client, as_role):
    changed = client.patch("/api/v1/environments/5", json={"labels": "linux, gpu linux"})
    assert changed.status_code == 200 and changed.json["labels"] == ["linux", "gpu"]
    assert client.patch("/api/v1/environments/6", json={"labels": ["gpu"]}).json["labels"] == ["gpu"]
    listed = client.get("/api/v1/environments", query_string={"label": "gpu"}).json
    assert [e["id"] for e in listed["items"]] == [5, 6] and listed["total"] == 2
    bad = client.get("/api/v1/environments", query_string={"label": "GPU!"})
    assert bad.status_code == 422 and list(bad.json["error"]["fields"]) == ["label"]
    for value in (["Bad"], [f"l{i}" for i in range(11)], 5):
        refused = client.patch("/api/v1/environments/5", json={"labels": value})
        assert refused.status_code == 422 and list(refused.json["error"]["fields"]) == ["labels"]
    with app.app_context():
        details = db.session.scalars(select(AuditRow.details).where(AuditRow.action == "environment.update")).all()
    assert {"labels": ["linux", "gpu"]} in [{k: d[k] for k in d if k == "labels"} for d in details]
    assert b"linux, gpu" in client.get("/environments/").data
    page = client.get("/environments/5").data
    assert b'value="linux, gpu"' in page and b"Pools:" in page
    form = client.post("/environments/5", data={"name": "env-5", "description": "", "labels": "db,  cache",
                                                "enabled": "y", "save": "Save"})
    assert form.status_code == 303 and client.get("/api/v1/environments/5").json["labels"] == ["db", "cache"]
    shown = client.post("/environments/5", data={"name": "env-5", "labels": "No!", "enabled": "y", "save": "Save"})
    assert shown.status_code == 422 and b"A label is" in shown.data
    operator = as_role("operator")
    assert operator.patch("/api/v1/environments/5", json={"labels": ["x"]}).status_code == 403
    assert client.get("/api/v1/environments/5").json["labels"] == ["db", "cache"]


def test_a_viewer_cannot_create_a_pool_run_an_operator_may_ask_high(app, as_role):
    label(app, {1: ["linux"]})
    viewer, operator = as_role("viewer"), as_role("operator")
    assert viewer.post("/api/v1/runs", json={"pool": "linux", "test_files": [PASSING]}).status_code == 403
    made = operator.post("/api/v1/runs", json={"pool": "linux", "test_files": [PASSING], "priority": "high"})
    assert made.status_code == 201 and made.json["priority"] == "high"


def test_the_new_run_form_offers_environments_pools_and_priority(app, client):
    label(app, {2: ["linux"], 3: ["linux"]})
    page = client.get("/runs/new").data
    assert b'name="pool"' in page and b"linux \xe2\x80\x94 2 environments" in page and b'name="priority"' in page
    both = client.post("/runs/new", data={"environment_id": "2", "pool": "linux", "priority": "normal",
                                          "test_files": [PASSING]})
    assert both.status_code == 422 and b"not both" in both.data
    made = client.post("/runs/new", data={"environment_id": "", "pool": "linux", "priority": "high",
                                          "test_files": [PASSING]})
    assert made.status_code == 303
    run = client.get("/api/v1/runs").json["items"][0]
    assert (run["pool"], run["priority"], run["environment_id"]) == ("linux", "high", 2)


# --- real workers ------------------------------------------------------------------------------------------------

class TestRealWorkers:
    @pytest.fixture
    def config(self, config):
        return {**config, "ENV_LOCK_TTL_SECONDS": 3, "MAINTENANCE_INTERVAL_SECONDS": 0.5, "RUN_TIMEOUT_SECONDS": 60,
                "SANDBOX": "off"}  # what is proven here is the dispatch, not the confinement (test_sandbox)

    @pytest.mark.slow
    @pytest.mark.one_database  # 200 real pytest runs cost a minute of CPU: once is enough (the lock is Redis's)
    def test_200_pool_runs_on_10_environments_never_overlap_and_run_on_their_label(self, app, client,
                                                                                   worker_processes):
        body = b"def test_quick():\n    pass\n"
        upload = client.post("/api/v1/test-files", data={"directory": "pools", "file": (io.BytesIO(body), "test_q.py")},
                             content_type="multipart/form-data")
        assert upload.status_code == 201, upload.json
        labels = {env: (["red"] if env <= 4 else ["green"] if env <= 7 else ["blue"]) for env in range(1, 11)}
        labels[4] = ["red", "green"]  # one environment in two pools
        label(app, labels)
        worker_processes(2)
        wanted = {}
        for i in range(200):
            run = create(client, [upload.json["path"]], pool=("red", "green", "blue")[i % 3])
            wanted[run["id"]] = run["pool"]
        with app.app_context():
            def done():  # each look in its own short transaction: SQLite writers must not wait for it
                left = db.session.scalar(select(func.count()).select_from(RunRow).where(
                    RunRow.state.in_(("queued", "running"))))
                db.session.rollback()
                return left == 0
            wait_until(done, timeout=420, interval=0.5, message="all 200 runs finished")
            runs = list(db.session.execute(select(RunRow.id, RunRow.state, RunRow.environment_id, RunRow.pool,
                                                  RunRow.started_at, RunRow.finished_at)))
        assert len(runs) == 200 and {r.state for r in runs} == {"success"}
        by_env: dict[int, list] = {}
        for r in runs:
            assert r.pool == wanted[r.id] and r.pool in labels[r.environment_id], f"run {r.id} on the wrong env"
            by_env.setdefault(r.environment_id, []).append((r.started_at, r.finished_at, r.id))
        assert set(by_env) == set(range(1, 11))
        for env, intervals in by_env.items():
            intervals.sort()
            for (start_a, end_a, a), (start_b, end_b, b) in zip(intervals, intervals[1:]):
                assert start_a < end_a <= start_b < end_b, f"runs {a} and {b} overlapped on environment {env}"
