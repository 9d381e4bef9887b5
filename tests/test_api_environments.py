"""The environments API: 100 from the start, edit, disable, and force-unlocking a stuck environment."""
from __future__ import annotations

import pytest

from conftest import ADMIN, client_as

PASSING = "sample_tests/test_passing.py"
ENV_KEYS = {"id", "name", "description", "enabled", "labels", "status", "current_run_id", "queue", "wait_p50_seconds",
            "hold", "variables", "secrets", "setup", "teardown"}
UNSET = {"variables": {}, "secrets": [], "setup": None, "teardown": None}  # issue 14: nothing given to runs yet


def error_code(response) -> str:
    assert response.is_json, response.data[:200]
    body = response.json["error"]
    assert set(body) == {"code", "message", "fields"} and body["message"]
    return body["code"]


def create(client, environment_id=1, files=(PASSING,)) -> dict:
    response = client.post("/api/v1/runs", json={"environment_id": environment_id, "test_files": list(files)})
    assert response.status_code == 201, response.json
    return response.json


def environment(client, environment_id) -> dict:
    response = client.get(f"/api/v1/environments/{environment_id}")
    assert response.status_code == 200
    return response.json


def run(client, run_id) -> dict:
    return client.get(f"/api/v1/runs/{run_id}").json


def test_a_hundred_idle_environments_exist_from_the_first_start(client):
    body = client.get("/api/v1/environments").json
    assert body["total"] == 100 and len(body["items"]) == 100
    assert [e["id"] for e in body["items"]] == list(range(1, 101))
    for item in body["items"]:
        assert item == {"id": item["id"], "name": f"env-{item['id']}", "description": "", "enabled": True,
                        "labels": [], "status": "idle", "current_run_id": None, "queue": [], "wait_p50_seconds": None,
                        "hold": None, **UNSET}
    assert environment(client, 42) == body["items"][41]


def test_the_environments_survive_a_restart_unchanged(config, client):
    from webapp import create_app

    client.patch("/api/v1/environments/5", json={"name": "staging"})
    restarted = create_app(config)
    again = client_as(restarted, ADMIN)
    assert again.get("/api/v1/environments").json["total"] == 100
    assert again.get("/api/v1/environments/5").json["name"] == "staging"
    restarted.extensions["db"].kw["bind"].dispose()


@pytest.mark.parametrize("environment_id", [0, 101, 999])
def test_an_unknown_environment_is_404(client, environment_id):
    for response in (client.get(f"/api/v1/environments/{environment_id}"),
                     client.patch(f"/api/v1/environments/{environment_id}", json={"name": "x"}),
                     client.post(f"/api/v1/environments/{environment_id}/unlock")):
        assert response.status_code == 404 and error_code(response) == "not_found"


def test_list_shows_who_holds_each_environment_and_who_waits(client):
    first, second, third = create(client, 10), create(client, 10), create(client, 20)
    items = {e["id"]: e for e in client.get("/api/v1/environments").json["items"]}
    assert set(items[10]) == ENV_KEYS
    assert (items[10]["status"], items[10]["current_run_id"], items[10]["queue"]) == ("busy", first["id"],
                                                                                      [second["id"]])
    assert (items[20]["status"], items[20]["current_run_id"], items[20]["queue"]) == ("busy", third["id"], [])
    assert sum(e["status"] == "busy" for e in items.values()) == 2


def test_patch_changes_only_what_is_sent(client):
    response = client.patch("/api/v1/environments/7", json={"name": "  payments staging  ",
                                                            "description": "Shared with the payments team."})
    assert response.status_code == 200
    assert response.json == {"id": 7, "name": "payments staging", "description": "Shared with the payments team.",
                             "enabled": True, "labels": [], "status": "idle", "current_run_id": None, "queue": [],
                             "wait_p50_seconds": None, "hold": None, **UNSET}
    response = client.patch("/api/v1/environments/7", json={"enabled": False})
    assert response.json["enabled"] is False and response.json["name"] == "payments staging"
    assert environment(client, 7)["description"] == "Shared with the payments team."
    assert client.patch("/api/v1/environments/7", json={}).json == environment(client, 7)
    assert environment(client, 8)["name"] == "env-8"


@pytest.mark.parametrize("changes, field, message", [
    ({"name": ""}, "name", "1 to 64 printable characters"),
    ({"name": "   "}, "name", "1 to 64 printable characters"),
    ({"name": "x" * 65}, "name", "1 to 64 printable characters"),
    ({"name": "two\nlines"}, "name", "1 to 64 printable characters"),
    ({"name": 5}, "name", "1 to 64 printable characters"),
    ({"name": None}, "name", "1 to 64 printable characters"),
    ({"description": "x" * 2001}, "description", "at most 2000 characters"),
    ({"description": 7}, "description", "at most 2000 characters"),
    ({"enabled": "false"}, "enabled", "true or false"),
    ({"enabled": 0}, "enabled", "true or false"),
    ({"enabled": None}, "enabled", "true or false"),
    ({"id": 8}, "id", "cannot be changed"),
    ({"status": "idle"}, "status", "cannot be changed"),
    ({"name": "fine", "queue": []}, "queue", "cannot be changed"),
])
def test_invalid_changes_are_422_and_change_nothing(client, changes, field, message):
    before = environment(client, 3)
    response = client.patch("/api/v1/environments/3", json=changes)
    assert response.status_code == 422 and error_code(response) == "validation_error"
    assert set(response.json["error"]["fields"]) == {field}
    assert any(message in m for m in response.json["error"]["fields"][field])
    assert environment(client, 3) == before


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_only_an_admin_may_edit_or_unlock_an_environment(client, as_role, role):
    someone = as_role(role)
    busy = create(client, 15)
    before = environment(client, 15)
    for response in (someone.patch("/api/v1/environments/15", json={"name": "mine"}),
                     someone.post("/api/v1/environments/15/unlock")):
        assert response.status_code == 403 and error_code(response) == "forbidden"
    assert environment(client, 15) == before and run(client, busy["id"])["state"] == "queued"
    assert someone.get("/api/v1/environments/15").json == before  # reading is fine


def test_a_patch_that_is_not_json_is_415_and_changes_nothing(client):
    before = environment(client, 3)
    response = client.patch("/api/v1/environments/3", data=b"name=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415 and error_code(response) == "unsupported_media_type"
    assert environment(client, 3) == before


def test_limits_of_name_and_description_are_inclusive(client):
    response = client.patch("/api/v1/environments/3", json={"name": "n" * 64, "description": "d" * 2000})
    assert response.status_code == 200 and response.json["name"] == "n" * 64


@pytest.mark.parametrize("body", [b"{oops", b"[]", b""])
def test_a_malformed_patch_is_400(client, body):
    response = client.patch("/api/v1/environments/3", data=body, content_type="application/json")
    assert response.status_code == 400 and error_code(response) == "bad_json"


def test_a_disabled_environment_accepts_no_new_runs(client, work):
    waiting = create(client, 4)
    client.patch("/api/v1/environments/4", json={"enabled": False})
    response = client.post("/api/v1/runs", json={"environment_id": 4, "test_files": [PASSING]})
    assert response.status_code == 422 and error_code(response) == "validation_error"
    assert set(response.json["error"]["fields"]) == {"environment_id"}
    assert "disabled" in response.json["error"]["fields"]["environment_id"][0]
    rerun = client.post(f"/api/v1/runs/{waiting['id']}/rerun")
    assert rerun.status_code == 422 and "environment_id" in rerun.json["error"]["fields"]
    assert client.get("/api/v1/runs").json["total"] == 1
    work()
    assert run(client, waiting["id"])["state"] == "success"  # what was already queued still runs
    client.patch("/api/v1/environments/4", json={"enabled": True})
    assert create(client, 4)["queue_position"] == 0


def test_unlock_ends_the_run_given_the_environment_and_the_queue_moves_on(client, work):
    stuck, next_ = create(client, 11), create(client, 11)
    response = client.post("/api/v1/environments/11/unlock")
    assert response.status_code == 200 and set(response.json) == ENV_KEYS
    ended = run(client, stuck["id"])
    assert ended["state"] == "error" and ended["error"] == "lock released by an operator"
    assert ended["finished_at"] is not None
    assert run(client, next_["id"])["queue_position"] == 0
    env = environment(client, 11)
    assert (env["status"], env["current_run_id"], env["queue"]) == ("busy", next_["id"], [])
    work()
    assert run(client, stuck["id"])["state"] == "error"  # its job, still queued, does not bring it back
    assert run(client, next_["id"])["state"] == "success"
    assert environment(client, 11)["status"] == "idle"


def test_unlock_frees_an_environment_whose_worker_died_mid_run(app, client, work):
    """A worker that died leaves its run ``running`` and its lock held until the lock expires."""
    from webapp.extensions import db
    from webapp.models import RunRow
    from webapp.db import utcnow

    dead, waiting = create(client, 12), create(client, 12)
    with app.app_context():
        db.session.get(RunRow, dead["id"]).state = "running"
        db.session.get(RunRow, dead["id"]).started_at = utcnow()
        db.session.commit()
    assert environment(client, 12)["current_run_id"] == dead["id"]
    client.post("/api/v1/environments/12/unlock")
    assert run(client, dead["id"])["state"] == "error"
    assert run(client, dead["id"])["error"] == "lock released by an operator"
    assert environment(client, 12)["current_run_id"] == waiting["id"]
    work()
    assert run(client, waiting["id"])["state"] == "success"


def test_unlock_releases_a_lock_no_run_of_ours_holds(app, client, work):
    app.extensions["redis"].set("env-lock:13", "held-by-something-else")
    blocked = create(client, 13)
    assert blocked["queue_position"] == 1
    env = environment(client, 13)
    assert (env["status"], env["current_run_id"], env["queue"]) == ("busy", None, [blocked["id"]])
    work()
    assert run(client, blocked["id"])["state"] == "queued"  # nothing may run while the lock is held
    env = client.post("/api/v1/environments/13/unlock").json
    assert (env["status"], env["current_run_id"], env["queue"]) == ("busy", blocked["id"], [])
    assert app.extensions["redis"].get("env-lock:13") != b"held-by-something-else"
    work()
    assert run(client, blocked["id"])["state"] == "success"
    assert environment(client, 13)["status"] == "idle"


def test_unlock_of_an_idle_environment_changes_nothing(client, work):
    done = create(client, 14)
    work()
    response = client.post("/api/v1/environments/14/unlock")
    assert response.status_code == 200 and response.json["status"] == "idle"
    assert run(client, done["id"])["state"] == "success" and run(client, done["id"])["error"] is None
