"""Schedules: a run at each due time (as the owner), the skip rule, no burst after downtime, one firing across
hosts, CRUD and validation through the API and the pages, and who may do what."""
from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from conftest import client_as, make_user
from webapp import create_app
from webapp.db import update, utcnow
from webapp.workers import maintenance_tick

PASSING = "sample_tests/test_passing.py"


def new_schedule(client, **fields):
    body = {"name": "nightly", "cron": "* * * * *", "environment_id": 1, "test_files": [PASSING], **fields}
    response = client.post("/api/v1/schedules", json=body)
    assert response.status_code == 201, response.json
    return response.json


def due_in_the_past(app, schedule_id: int, minutes: int = 1):
    from webapp.extensions import db
    from webapp.models import ScheduleRow

    past = (utcnow() - timedelta(minutes=minutes)).replace(second=0, microsecond=0)
    with app.app_context():
        db.session.execute(update(ScheduleRow).where(ScheduleRow.id == schedule_id).values(next_due_at=past))
        db.session.commit()
    return past


def tick(app) -> dict:
    from webapp.schedules import services

    with app.app_context():
        return services.tick()


def runs_of(app, schedule_id: int):
    from webapp.extensions import db
    from webapp.models import RunRow

    with app.app_context():
        rows = list(db.session.scalars(select(RunRow).where(RunRow.schedule_id == schedule_id).order_by(RunRow.id)))
        db.session.expunge_all()
        return rows


def test_a_due_schedule_fires_one_run_as_its_owner_and_moves_its_next_due_time_past_now(app, client, as_role):
    operator = as_role("operator", "sam")
    body = new_schedule(operator)
    assert body["owner"] == "sam" and body["enabled"] is True and body["skipped"] == 0 and body["runs"] == []
    past = due_in_the_past(app, body["id"])
    assert tick(app) == {"started": 1, "skipped": 0, "failed": 0}
    runs = runs_of(app, body["id"])
    assert [(r.username, r.schedule_id, r.state, r.test_files) for r in runs] == [("sam", body["id"], "queued",
                                                                                   [PASSING])]
    now = client.get(f"/api/v1/schedules/{body['id']}").json
    assert now["runs"] == [runs[0].id] and now["last_due_at"] == past.isoformat()
    assert now["next_due_at"] > utcnow().isoformat()
    assert tick(app) == {"started": 0, "skipped": 0, "failed": 0}  # not due again yet
    assert len(runs_of(app, body["id"])) == 1
    audit = client.get("/api/v1/audit", query_string={"action": "run.create"}).json["items"]
    assert audit[0]["actor"] == "system" and audit[0]["details"]["schedule_id"] == body["id"]


def test_while_its_previous_run_still_waits_a_due_time_is_skipped_and_counted(app, client, work):
    body = new_schedule(client)
    due_in_the_past(app, body["id"])
    assert tick(app)["started"] == 1
    due_in_the_past(app, body["id"])
    assert tick(app) == {"started": 0, "skipped": 1, "failed": 0}
    assert len(runs_of(app, body["id"])) == 1
    assert client.get(f"/api/v1/schedules/{body['id']}").json["skipped"] == 1
    work()  # the run ends: the next due time starts a new one
    assert runs_of(app, body["id"])[0].state == "success"
    due_in_the_past(app, body["id"])
    assert tick(app)["started"] == 1 and len(runs_of(app, body["id"])) == 2


def test_after_downtime_of_many_due_times_one_run_starts_not_a_burst(app, client):
    body = new_schedule(client)
    due_in_the_past(app, body["id"], minutes=600)  # ten hours of a per-minute cron
    assert tick(app)["started"] == 1
    assert tick(app)["started"] == 0
    assert len(runs_of(app, body["id"])) == 1
    assert client.get(f"/api/v1/schedules/{body['id']}").json["next_due_at"] > utcnow().isoformat()


def test_a_disabled_schedule_does_not_fire_and_enabling_recomputes_from_now(app, client):
    body = new_schedule(client, enabled=False)
    assert body["next_due_at"] is None
    due_in_the_past(app, body["id"])
    off = client.patch(f"/api/v1/schedules/{body['id']}", json={"name": "still off"}).json
    assert off["next_due_at"] is None
    due_in_the_past(app, body["id"])  # even with a stale due time in the row
    assert tick(app)["started"] == 0 and runs_of(app, body["id"]) == []
    on = client.patch(f"/api/v1/schedules/{body['id']}", json={"enabled": True}).json
    assert on["enabled"] is True and on["next_due_at"] > utcnow().isoformat()
    assert tick(app)["started"] == 0


def test_two_hosts_ticking_at_once_fire_a_due_time_once(app, client):
    body = new_schedule(client)
    due_in_the_past(app, body["id"])
    barrier, failures, results = threading.Barrier(6), [], []

    def race():
        try:
            with app.app_context():
                from webapp.schedules import services

                barrier.wait()
                results.append(services.tick())
        except Exception as exc:  # noqa: BLE001  (reported below)
            failures.append(repr(exc))

    threads = [threading.Thread(target=race) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert sum(r["started"] for r in results) == 1 and sum(r["skipped"] for r in results) == 0
    assert len(runs_of(app, body["id"])) == 1


def test_a_schedule_survives_app_recreation_and_the_maintenance_loop_fires_it(app, client, config):
    body = new_schedule(client, cron="*/5 * * * *")
    due_in_the_past(app, body["id"], minutes=7)
    app.extensions["db"].kw["bind"].dispose()
    again = create_app(config)  # a new process, the same database
    assert maintenance_tick(again)["schedules"] == {"started": 1, "skipped": 0, "failed": 0}
    assert maintenance_tick(again)["schedules"]["started"] == 0
    assert [r.schedule_id for r in runs_of(again, body["id"])] == [body["id"]]
    again.extensions["db"].kw["bind"].dispose()


def test_a_schedule_whose_environment_was_disabled_fails_its_due_time_without_retrying(app, client):
    body = new_schedule(client, environment_id=2)
    assert client.patch("/api/v1/environments/2", json={"enabled": False}).status_code == 200
    due_in_the_past(app, body["id"])
    assert tick(app) == {"started": 0, "skipped": 0, "failed": 1}
    assert tick(app)["failed"] == 0 and runs_of(app, body["id"]) == []
    assert client.get("/api/v1/audit", query_string={"action": "schedule.fail"}).json["total"] == 1


# --- CRUD and validation ------------------------------------------------------------------------------------

def test_crud_through_the_api(client):
    created = client.post("/api/v1/schedules", json={"name": " nightly ", "cron": "0  2 * * *", "environment_id": 1,
                                                     "test_files": [PASSING], "priority": "high"})
    assert created.status_code == 201
    body = created.json
    assert created.headers["Location"].endswith(f"/api/v1/schedules/{body['id']}")
    assert {k: body[k] for k in ("name", "cron", "priority", "pool", "environment_id", "enabled")} == {
        "name": "nightly", "cron": "0 2 * * *", "priority": "high", "pool": None, "environment_id": 1,
        "enabled": True}
    assert body["next_due_at"].endswith("02:00:00+00:00")
    listed = client.get("/api/v1/schedules", query_string={"per_page": 1}).json
    assert listed["total"] == 1 and listed["items"][0]["id"] == body["id"]
    changed = client.patch(f"/api/v1/schedules/{body['id']}", json={"cron": "30 4 * * *"}).json
    assert changed["cron"] == "30 4 * * *" and changed["name"] == "nightly" and changed["priority"] == "high"
    assert changed["next_due_at"].endswith("04:30:00+00:00")
    assert client.delete(f"/api/v1/schedules/{body['id']}").status_code == 204
    assert client.get(f"/api/v1/schedules/{body['id']}").status_code == 404
    actions = [a["action"] for a in client.get("/api/v1/audit", query_string={"target": f"schedule:{body['id']}"})
               .json["items"]]
    assert sorted(actions) == ["schedule.create", "schedule.delete", "schedule.update"]


@pytest.mark.parametrize("change, field", [
    ({"name": ""}, "name"), ({"cron": "* * * *"}, "cron"), ({"cron": "99 * * * *"}, "cron"),
    ({"cron": "0 0 31 2 *"}, "cron"), ({"test_files": []}, "test_files"), ({"test_files": ["nope.py"]}, "test_files"),
    ({"environment_id": 0}, "environment_id"), ({"environment_id": "x"}, "environment_id"),
    ({"pool": "gpu"}, "pool"), ({"priority": "urgent"}, "priority"), ({"enabled": "yes"}, "enabled"),
    ({"colour": "red"}, "colour"),
])
def test_each_invalid_field_is_refused_with_its_own_message(client, change, field):
    body = {"name": "n", "cron": "* * * * *", "environment_id": 1, "test_files": [PASSING], **change}
    response = client.post("/api/v1/schedules", json=body)
    assert response.status_code == 422 and list(response.json["error"]["fields"]) == [field], response.json
    created = new_schedule(client)
    patched = client.patch(f"/api/v1/schedules/{created['id']}", json=change)
    assert patched.status_code == 422 and list(patched.json["error"]["fields"]) == [field]


def test_a_schedule_names_an_environment_or_a_pool_never_both_nor_neither(client):
    base = {"name": "n", "cron": "* * * * *", "test_files": [PASSING]}
    unknown = client.post("/api/v1/schedules", json={**base, "pool": "linux"})
    assert unknown.status_code == 422
    assert unknown.json["error"]["fields"] == {"pool": ["No enabled environment has the label linux."]}
    both = client.post("/api/v1/schedules", json={**base, "pool": "linux", "environment_id": 1})
    assert list(both.json["error"]["fields"]) == ["pool"] and "not both" in both.json["error"]["fields"]["pool"][0]
    neither = client.post("/api/v1/schedules", json=base)
    assert list(neither.json["error"]["fields"]) == ["environment_id"]
    bad = client.post("/api/v1/schedules", json={**base, "pool": "Linux!"})
    assert list(bad.json["error"]["fields"]) == ["pool"]


def test_a_pool_schedule_starts_pool_runs_at_its_priority(app, client):
    assert client.patch("/api/v1/environments/3", json={"labels": ["linux"]}).status_code == 200
    body = new_schedule(client, environment_id=None, pool="linux", priority="high")
    assert (body["pool"], body["environment_id"], body["priority"]) == ("linux", None, "high")
    due_in_the_past(app, body["id"])
    assert tick(app)["started"] == 1
    [run] = runs_of(app, body["id"])
    assert (run.pool, run.priority, run.environment_id) == ("linux", "high", 3)  # env 3 was free: given at once
    moved = client.patch(f"/api/v1/schedules/{body['id']}", json={"environment_id": 2}).json
    assert (moved["environment_id"], moved["pool"]) == (2, None)


def test_a_viewer_reads_but_may_not_write_and_another_operator_may_not_edit(app, client, as_role):
    mine = new_schedule(as_role("operator", "owner-op"))
    viewer, other = as_role("viewer"), as_role("operator", "other-op")
    assert viewer.get(f"/api/v1/schedules/{mine['id']}").status_code == 200
    assert viewer.post("/api/v1/schedules", json={"name": "v", "cron": "* * * * *", "environment_id": 1,
                                                  "test_files": [PASSING]}).status_code == 403
    for who in (viewer, other):
        assert who.patch(f"/api/v1/schedules/{mine['id']}", json={"enabled": False}).status_code == 403
        assert who.delete(f"/api/v1/schedules/{mine['id']}").status_code == 403
        assert who.post(f"/schedules/{mine['id']}/delete").status_code == 403
    assert "Delete schedule" not in other.get(f"/schedules/{mine['id']}").get_data(as_text=True)
    assert other.post(f"/schedules/{mine['id']}", data={"name": "x", "cron": "* * * * *", "environment_id": "1",
                                                        "test_files": PASSING, "save": "Save schedule"}).status_code == 403
    assert client.get(f"/api/v1/schedules/{mine['id']}").json["enabled"] is True
    assert client.patch(f"/api/v1/schedules/{mine['id']}", json={"enabled": False}).status_code == 200  # an admin


# --- the pages ----------------------------------------------------------------------------------------------

def test_the_list_page_shows_next_due_time_and_the_outcome_strip(app, client, work):
    body = new_schedule(client, name="strip me")
    due_in_the_past(app, body["id"])
    tick(app)
    work()
    run_id = runs_of(app, body["id"])[0].id
    page = client.get("/schedules/").get_data(as_text=True)
    assert "strip me" in page and "<code>* * * * *</code>" in page
    row = client.get(f"/api/v1/schedules/{body['id']}").json
    assert row["next_due_at"][:16].replace("T", " ") in page
    assert f'href="/runs/{run_id}"' in page and 'class="s-success' in page
    detail = client.get(f"/schedules/{body['id']}").get_data(as_text=True)
    assert f'href="/runs/{run_id}"' in detail and "Delete schedule" in detail


def test_the_new_schedule_form_creates_and_shows_errors_beside_fields(app, client):
    bad = client.post("/schedules/new", data={"name": "", "cron": "bad", "environment_id": "1",
                                              "test_files": PASSING, "priority": "normal", "save": "Save schedule"})
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert re.search(r'id="cron-error"><li>A cron expression has exactly 5 fields', html)
    assert 'id="name-error"' in html
    good = client.post("/schedules/new", data={"name": "form", "cron": "0 6 * * 1", "environment_id": "1",
                                               "test_files": f"{PASSING}\n", "priority": "normal", "enabled": "y",
                                               "save": "Save schedule"})
    assert good.status_code == 303
    schedule_id = int(good.headers["Location"].rstrip("/").split("/")[-1])
    edited = client.post(f"/schedules/{schedule_id}", data={
        "name": "form2", "cron": "0 7 * * 1", "environment_id": "1", "test_files": PASSING, "priority": "high",
        "save": "Save schedule"})
    assert edited.status_code == 303
    row = client.get(f"/api/v1/schedules/{schedule_id}").json
    assert (row["name"], row["cron"], row["priority"], row["enabled"]) == ("form2", "0 7 * * 1", "high", False)
    assert client.post(f"/schedules/{schedule_id}/delete").status_code == 303
    assert client.get(f"/api/v1/schedules/{schedule_id}").status_code == 404


def test_the_nav_has_schedules(client):
    assert 'href="/schedules/"' in client.get("/schedules/").get_data(as_text=True)


def test_the_schedule_form_offers_pools_and_refuses_both_beside_the_field(app, client):
    assert client.patch("/api/v1/environments/4", json={"labels": ["nightly"]}).status_code == 200
    form = {"name": "pooled", "cron": "0 6 * * 1", "test_files": PASSING, "priority": "high", "enabled": "y",
            "save": "Save schedule"}
    assert 'value="nightly"' in client.get("/schedules/").get_data(as_text=True)
    both = client.post("/schedules/new", data={**form, "environment_id": "1", "pool": "nightly"})
    assert both.status_code == 422 and re.search(r'id="pool-error"><li>Name an environment_id or a pool, not both',
                                                 both.get_data(as_text=True))
    made = client.post("/schedules/new", data={**form, "environment_id": "", "pool": "nightly"})
    assert made.status_code == 303
    listed = client.get("/api/v1/schedules").json["items"][0]
    assert (listed["pool"], listed["environment_id"], listed["priority"]) == ("nightly", None, "high")
