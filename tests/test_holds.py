"""Environment holds (issue 13, part 3): a held environment starts nothing until released or expired; the
running run finishes; expiry is cleared by the maintenance loop, which tells the holder and hands the
environment on. Real Redis; jobs run by the burst worker (``work``)."""
from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from conftest import wait_until
from webapp.db import update as sql_update
from webapp.extensions import db
from webapp.models import AuditRow, EnvironmentRow, EventRow, RunRow
from webapp.workers import maintenance_tick

PASSING = "sample_tests/test_passing.py"
ENV = 5


def hold(client, minutes=30, reason="patching the database", env=ENV):
    return client.post(f"/api/v1/environments/{env}/hold", json={"minutes": minutes, "reason": reason})


def create(client, env=ENV):
    response = client.post("/api/v1/runs", json={"environment_id": env, "test_files": [PASSING]})
    assert response.status_code == 201, response.json
    return response.json["id"]


def run(client, run_id):
    return client.get(f"/api/v1/runs/{run_id}").json


def lock_token(app, run_id):
    with app.app_context():
        return db.session.get(RunRow, run_id).lock_token


def audits(app, action):
    with app.app_context():
        return [(a.actor, a.target, a.details) for a in db.session.scalars(
            select(AuditRow).where(AuditRow.action == action).order_by(AuditRow.id))]


def test_hold_answers_the_environment_with_its_hold_and_an_expired_hold_shows_null(app, client):
    before = datetime.now(timezone.utc)
    response = hold(client, 30, "  debugging flaky login  ")
    assert response.status_code == 200
    body = response.json
    assert body["id"] == ENV and set(body["hold"]) == {"by", "reason", "until", "until_released"}
    assert body["hold"]["until_released"] is False  # an operator's hold ends by itself
    assert body["hold"]["by"] == "admin" and body["hold"]["reason"] == "debugging flaky login"
    until = datetime.fromisoformat(body["hold"]["until"])
    assert before + timedelta(minutes=30) <= until <= datetime.now(timezone.utc) + timedelta(minutes=30)
    assert client.get(f"/api/v1/environments/{ENV}").json["hold"] == body["hold"]
    listed = {e["id"]: e["hold"] for e in client.get("/api/v1/environments").json["items"]}
    assert listed[ENV] == body["hold"] and listed[ENV + 1] is None
    assert audits(app, "environment.hold")[-1] == ("admin", f"environment:{ENV}", {
        "minutes": 30, "reason": "debugging flaky login", "until": body["hold"]["until"]})
    with app.app_context():
        db.session.execute(sql_update(EnvironmentRow).where(EnvironmentRow.id == ENV)
                           .values(hold_until=datetime.now(timezone.utc) - timedelta(seconds=1)))
        db.session.commit()
    assert client.get(f"/api/v1/environments/{ENV}").json["hold"] is None


def test_holding_a_held_environment_replaces_the_hold(app, client, as_role):
    assert hold(client, 10, "first").status_code == 200
    response = hold(as_role("operator"), 1440, "second")
    assert response.status_code == 200 and response.json["hold"]["by"] == "operator-user"
    assert response.json["hold"]["reason"] == "second"
    assert len(audits(app, "environment.hold")) == 2


def test_a_held_environment_starts_nothing_until_release_then_the_head_starts_at_once(app, client, work):
    assert hold(client).status_code == 200
    first, second = create(client), create(client)
    assert [run(client, r)["queue_position"] for r in (first, second)] == [1, 2]
    work()
    assert [run(client, r)["state"] for r in (first, second)] == ["queued", "queued"]
    assert lock_token(app, first) is None
    env = client.get(f"/api/v1/environments/{ENV}").json
    assert env["queue"] == [first, second] and env["current_run_id"] is None
    response = client.post(f"/api/v1/environments/{ENV}/release")
    assert response.status_code == 200 and response.json["hold"] is None
    assert response.json["current_run_id"] == first and lock_token(app, first)  # given at once, not on a tick
    work()
    assert [run(client, r)["state"] for r in (first, second)] == ["success", "success"]
    assert audits(app, "environment.release")[-1][:2] == ("admin", f"environment:{ENV}")


def test_the_running_run_finishes_while_held_and_the_next_waits(app, client, work):
    first = create(client)
    assert lock_token(app, first)  # given the free environment at once
    assert hold(client).status_code == 200
    second = create(client)
    work()
    assert run(client, first)["state"] == "success"
    assert run(client, second)["state"] == "queued" and lock_token(app, second) is None
    maintenance_tick(app)  # the maintenance loop does not hand a held environment on either
    assert lock_token(app, second) is None
    assert client.post(f"/api/v1/environments/{ENV}/release").status_code == 200
    work()
    assert run(client, second)["state"] == "success"


def test_expiry_releases_dispatches_tells_the_holder_and_audits(app, client, as_role, work):
    operator = as_role("operator")
    assert hold(operator, 5, "maintenance").status_code == 200
    waiting = create(client)
    maintenance_tick(app)
    assert lock_token(app, waiting) is None  # not expired yet: still held
    with app.app_context():
        db.session.execute(sql_update(EnvironmentRow).where(EnvironmentRow.id == ENV)
                           .values(hold_until=datetime.now(timezone.utc) - timedelta(seconds=5)))
        db.session.commit()
    result = maintenance_tick(app)
    assert result["holds"] == 1
    assert lock_token(app, waiting)
    with app.app_context():
        row = db.session.get(EnvironmentRow, ENV)
        assert (row.hold_by, row.hold_reason, row.hold_until) == (None, None, None)
        events = list(db.session.scalars(select(EventRow).where(EventRow.user_id == "operator-user")))
        assert [e.description for e in events] == [f"Your hold on environment {ENV} expired."]
        assert events[0].source == "environment"
    actor, target, details = audits(app, "environment.release")[-1]
    assert (actor, target, details["expired"], details["by"]) == ("system", f"environment:{ENV}", True,
                                                                  "operator-user")
    assert maintenance_tick(app)["holds"] == 0  # once
    work()
    assert run(client, waiting)["state"] == "success"


@pytest.mark.parametrize("body, field", [
    ({"reason": "x"}, "minutes"), ({"minutes": 0, "reason": "x"}, "minutes"),
    ({"minutes": 1441, "reason": "x"}, "minutes"), ({"minutes": "ten", "reason": "x"}, "minutes"),
    ({"minutes": True, "reason": "x"}, "minutes"), ({"minutes": 1.5, "reason": "x"}, "minutes"),
    ({"minutes": 5}, "reason"), ({"minutes": 5, "reason": "   "}, "reason"),
    ({"minutes": 5, "reason": "x" * 501}, "reason"), ({"minutes": 5, "reason": 7}, "reason"),
    ({"minutes": 5, "reason": "x", "until": "later"}, "until"),
])
def test_bad_holds_are_refused_per_field(app, client, body, field):
    response = client.post(f"/api/v1/environments/{ENV}/hold", json=body)
    assert response.status_code == 422 and response.json["error"]["code"] == "validation_error"
    assert list(response.json["error"]["fields"]) == [field]
    assert client.get(f"/api/v1/environments/{ENV}").json["hold"] is None
    assert audits(app, "environment.hold") == []


def test_both_fields_wrong_are_reported_together(client):
    response = client.post(f"/api/v1/environments/{ENV}/hold", json={"minutes": -1, "reason": ""})
    assert response.status_code == 422 and set(response.json["error"]["fields"]) == {"minutes", "reason"}


def test_limits_are_accepted(client):
    assert hold(client, 1, "x").status_code == 200
    assert hold(client, 1440, "x" * 500).status_code == 200


def test_unknown_environment_404_and_release_when_not_held_409(app, client):
    assert hold(client, env=9999).status_code == 404
    assert client.post("/api/v1/environments/9999/release").status_code == 404
    response = client.post(f"/api/v1/environments/{ENV}/release")
    assert response.status_code == 409 and response.json["error"]["code"] == "invalid_state"
    assert audits(app, "environment.release") == []


def test_a_viewer_may_neither_hold_nor_release(app, client, as_role):
    viewer = as_role("viewer")
    assert hold(viewer).status_code == 403
    assert client.get(f"/api/v1/environments/{ENV}").json["hold"] is None
    assert hold(client).status_code == 200
    assert viewer.post(f"/api/v1/environments/{ENV}/release").status_code == 403
    assert viewer.post(f"/environments/{ENV}/release", data={"release": "Release"}).status_code == 403
    assert viewer.post(f"/environments/{ENV}/hold", data={"minutes": "5", "reason": "x"}).status_code == 403
    assert client.get(f"/api/v1/environments/{ENV}").json["hold"]["by"] == "admin"
    page = viewer.get(f"/environments/{ENV}").get_data(as_text=True)
    assert "Held by <strong>admin</strong>" in page and 'action="/environments/5/hold"' not in page


def test_the_pages_show_the_hold_and_operators_hold_and_release_through_forms(app, as_role):
    operator = as_role("operator")
    page = operator.get(f"/environments/{ENV}").get_data(as_text=True)
    assert "Not held." in page and 'action="/environments/5/hold"' in page
    assert 'action="/environments/5/release"' not in page
    refused = operator.post(f"/environments/{ENV}/hold", data={"minutes": "9999", "reason": "", "hold": "Hold"})
    assert refused.status_code == 422
    text = refused.get_data(as_text=True)
    assert re.search(r'class="field has-error">\s*<label for="minutes"', text)
    assert re.search(r'class="field has-error">\s*<label for="reason"', text)
    assert "Minutes must be a whole number from 1 to 1440." in text
    assert operator.post(f"/environments/{ENV}/release", data={"release": "Release"}).status_code == 409
    done = operator.post(f"/environments/{ENV}/hold", data={"minutes": "45", "reason": "db upgrade", "hold": "Hold"})
    assert done.status_code == 303
    until = operator.get(f"/api/v1/environments/{ENV}").json["hold"]["until"]
    page = operator.get(f"/environments/{ENV}").get_data(as_text=True)
    assert "Held by <strong>operator-user</strong>" in page and "db upgrade" in page
    assert until[:16].replace("T", " ") + " UTC" in page and 'action="/environments/5/release"' in page
    grid = operator.get("/environments/").get_data(as_text=True)
    assert "held by operator-user" in grid and f"until {until[11:16]} UTC" in grid and "db upgrade" in grid
    assert operator.post(f"/environments/{ENV}/release", data={"release": "Release"}).status_code == 303
    assert operator.get(f"/api/v1/environments/{ENV}").json["hold"] is None


class TestRealWorkers:
    """The same on a real worker process, whose own maintenance loop ends the hold."""

    @pytest.fixture
    def config(self, config):
        return {**config, "ENV_LOCK_TTL_SECONDS": 3, "MAINTENANCE_INTERVAL_SECONDS": 0.3, "RUN_TIMEOUT_SECONDS": 60}

    @pytest.mark.slow
    def test_a_held_environment_waits_on_a_live_worker_until_its_hold_ends(self, app, client, worker_processes):
        worker_processes(1)
        assert hold(client, 5, "live").status_code == 200
        waiting, elsewhere = create(client), create(client, env=ENV + 1)
        wait_until(lambda: run(client, elsewhere)["state"] == "success", timeout=30, message="the other env ran")
        time.sleep(1.0)  # several maintenance passes: the held environment still starts nothing
        assert run(client, waiting)["state"] == "queued" and run(client, waiting)["queue_position"] == 1
        with app.app_context():
            db.session.execute(sql_update(EnvironmentRow).where(EnvironmentRow.id == ENV)
                               .values(hold_until=datetime.now(timezone.utc) - timedelta(seconds=1)))
            db.session.commit()
        wait_until(lambda: run(client, waiting)["state"] == "success", timeout=30, message="started on expiry")
        assert client.get(f"/api/v1/environments/{ENV}").json["hold"] is None
        assert audits(app, "environment.release")[-1][2]["expired"] is True
