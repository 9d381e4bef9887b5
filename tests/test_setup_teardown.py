"""An environment's setup and teardown around each run (issue 14): in order inside the lock, in the run's log
under their own headers, their results apart from the run's own; a failing setup skips the tests; a teardown
that fails, times out or never runs (a worker killed mid-run) puts the environment on hold until an admin
releases it; cancelled and timed-out runs still run their teardown."""
from __future__ import annotations

import io
import signal

import psutil
import pytest
from sqlalchemy import select

from conftest import ADMIN, user_client, wait_until
from test_run_variables import configure

ENVIRONMENT = 4
SETUP_OK = b"def test_setup():\n    open('stage.log', 'a').write('setup,')\n"
OWN = b"def test_own():\n    open('stage.log', 'a').write('tests,')\n"
TEARDOWN_OK = (b"import os\n\ndef test_teardown():\n"
               b"    print('order:', open('stage.log').read() if os.path.exists('stage.log') else '-')\n")
SETUP_FAIL = b"def test_setup():\n    assert False, 'could not seed the database'\n"
TEARDOWN_FAIL = b"def test_teardown():\n    assert False, 'could not clean up'\n"
SLEEP = (b"import time\n\ndef test_long(capsys):\n    with capsys.disabled():\n        print('sleeping', flush=True)\n"
         b"    time.sleep(60)\n")


@pytest.fixture
def config(config):
    return {**config, "ENV_LOCK_TTL_SECONDS": 3, "MAINTENANCE_INTERVAL_SECONDS": 0.5}


@pytest.fixture
def files(client):
    """Upload the stage files: ``files["setup_ok"]`` → its path."""
    paths = {}
    for name, body in {"setup_ok": SETUP_OK, "own": OWN, "teardown_ok": TEARDOWN_OK, "setup_fail": SETUP_FAIL,
                       "teardown_fail": TEARDOWN_FAIL, "sleep": SLEEP}.items():
        response = client.post("/api/v1/test-files", data={"directory": "stages", "file": (
            io.BytesIO(body), f"test_{name}.py")}, content_type="multipart/form-data")
        assert response.status_code == 201, response.json
        paths[name] = response.json["path"]
    return paths


def create(client, files: list[str], environment_id: int = ENVIRONMENT) -> int:
    created = client.post("/api/v1/runs", json={"environment_id": environment_id, "test_files": files})
    assert created.status_code == 201, created.json
    return created.json["id"]


def finished(client, run_id: int) -> dict | None:
    body = client.get(f"/api/v1/runs/{run_id}").json
    return body if body["state"] not in ("queued", "running") else None


def log_of(client, run_id: int) -> str:
    return client.get(f"/api/v1/runs/{run_id}/log.txt").get_data(as_text=True)


def hold_of(client, environment_id: int = ENVIRONMENT) -> dict | None:
    from webapp.environments import holds
    from webapp.extensions import db
    from webapp.models import EnvironmentRow

    with client.application.app_context():
        return holds.as_json(db.session.get(EnvironmentRow, environment_id))


def test_setup_then_the_tests_then_teardown_each_apart(app, client, work, files):
    configure(app, ENVIRONMENT, setup=files["setup_ok"], teardown=files["teardown_ok"])
    run_id = create(client, [files["own"]])
    work()
    body = finished(client, run_id)
    assert body["state"] == "success", body
    assert [t["nodeid"] for t in body["tests"]] == [f"{files['own']}::test_own"]  # the run's own tests only
    assert body["summary"]["total"] == 1
    assert {name: stage["state"] for name, stage in body["stages"].items()} == {"setup": "passed",
                                                                                "teardown": "passed"}
    assert body["stages"]["setup"]["file"] == files["setup_ok"]
    assert body["stages"]["teardown"]["tests"][0]["outcome"] == "passed"
    log = log_of(client, run_id)
    assert log.index(f"===== setup: {files['setup_ok']} =====") < log.index(f"===== tests: {files['own']} =====") \
        < log.index(f"===== teardown: {files['teardown_ok']} =====")
    assert "order: setup,tests," in log
    assert hold_of(client) is None
    page = client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert "Setup and teardown" in page and files["teardown_ok"] in page


def test_a_failing_setup_ends_the_run_in_error_without_its_tests_and_teardown_still_runs(app, client, work, files):
    configure(app, ENVIRONMENT, setup=files["setup_fail"], teardown=files["teardown_ok"])
    run_id = create(client, [files["own"]])
    work()
    body = finished(client, run_id)
    assert body["state"] == "error" and body["error"] == "setup failed", body
    assert body["tests"] == [] and body["summary"]["total"] == 0
    assert body["stages"]["setup"]["state"] == "failed"
    assert "could not seed the database" in body["stages"]["setup"]["tests"][0]["message"]
    assert body["stages"]["teardown"]["state"] == "passed"
    log = log_of(client, run_id)
    assert "===== tests:" not in log and "order: -" in log
    assert hold_of(client) is None


def test_a_failing_teardown_keeps_the_outcome_and_holds_the_environment_until_an_admin_releases_it(app, client,
                                                                                                   work, files):
    from webapp.environments import holds
    from webapp.extensions import db
    from webapp.models import AuditRow, EventRow

    olga = user_client(app, "olga", "operator")
    configure(app, ENVIRONMENT, teardown=files["teardown_fail"])
    run_id = create(olga, [files["own"]])
    waiting = create(olga, [files["own"]])
    work()
    body = finished(client, run_id)
    assert body["state"] == "success" and body["stages"]["teardown"]["state"] == "failed", body
    hold = hold_of(client)
    assert hold["by"] == "cutover" and hold["reason"] == f"teardown failed after run #{run_id}"
    assert hold["until_released"] is True
    assert client.get(f"/api/v1/runs/{waiting}").json["state"] == "queued"  # the next user waits
    with app.app_context():
        told = db.session.scalars(select(EventRow.user_id).where(EventRow.description.contains("teardown failed")))
        assert sorted(told) == [ADMIN, "olga"]
        entry = db.session.scalars(select(AuditRow).where(AuditRow.action == "environment.hold")).one()
        assert entry.actor == "system" and entry.details["run_id"] == run_id
        assert holds.expire() == 0  # the maintenance loop's expiry leaves it
    grid = client.get("/environments/").get_data(as_text=True)
    assert "until released" in grid
    assert "until an admin releases it" in client.get(f"/environments/{ENVIRONMENT}").get_data(as_text=True)
    refused = olga.post(f"/api/v1/environments/{ENVIRONMENT}/release")
    assert refused.status_code == 403 and "Only an admin" in refused.json["error"]["message"], refused.json
    assert olga.post(f"/api/v1/environments/{ENVIRONMENT}/hold", json={"minutes": 1, "reason": "mine"}).status_code \
        == 403
    configure(app, ENVIRONMENT)  # the admin cleaned up by hand and removed the broken teardown
    assert client.post(f"/api/v1/environments/{ENVIRONMENT}/release").status_code == 200
    work()
    assert finished(client, waiting)["state"] == "success"


def test_a_teardown_over_its_own_time_limit_holds_the_environment(app, client, work, files):
    app.config["TEARDOWN_TIMEOUT_SECONDS"] = 1.5
    configure(app, ENVIRONMENT, teardown=files["sleep"])
    run_id = create(client, [files["own"]])
    work()
    body = finished(client, run_id)
    assert body["state"] == "success" and body["stages"]["teardown"]["state"] == "timeout", body
    assert hold_of(client)["reason"] == f"teardown failed after run #{run_id}"


def test_a_timed_out_run_still_runs_its_teardown(app, client, work, files):
    app.config["RUN_TIMEOUT_SECONDS"] = 1.5
    configure(app, ENVIRONMENT, teardown=files["teardown_ok"])
    run_id = create(client, [files["sleep"]])
    work()
    body = finished(client, run_id)
    assert body["state"] == "error" and body["error"] == "timed out after 1.5 s", body
    assert body["stages"]["teardown"]["state"] == "passed"
    assert "===== teardown:" in log_of(client, run_id) and hold_of(client) is None


@pytest.mark.slow
def test_a_cancelled_run_still_runs_its_teardown(app, client, files, worker_processes):
    configure(app, ENVIRONMENT, teardown=files["teardown_ok"])
    worker_processes(1)
    run_id = create(client, [files["sleep"]])
    wait_until(lambda: "sleeping" in log_of(client, run_id), 20, message="the test to start")
    assert client.post(f"/api/v1/runs/{run_id}/cancel").status_code == 202
    body = wait_until(lambda: finished(client, run_id), 20, message="the cancel and the teardown")
    assert body["state"] == "cancelled" and body["stages"]["teardown"]["state"] == "passed", body
    assert "===== teardown:" in log_of(client, run_id) and hold_of(client) is None


@pytest.mark.slow
def test_a_worker_killed_mid_run_leaves_the_environment_held_teardown_did_not_run(app, client, files,
                                                                                   worker_processes):
    from webapp.extensions import db
    from webapp.models import EventRow

    configure(app, ENVIRONMENT, teardown=files["teardown_ok"])
    doomed, _ = worker_processes(2)
    run_id = create(client, [files["sleep"]])
    wait_until(lambda: "sleeping" in log_of(client, run_id), 20, message="the test to start")
    holder = next(w for w in (doomed, _) if any("pytest" in " ".join(p.cmdline()) for p in
                                                psutil.Process(w.pid).children(recursive=True)))
    for proc in [psutil.Process(holder.pid), *psutil.Process(holder.pid).children(recursive=True)]:
        proc.send_signal(signal.SIGKILL)
    lost = wait_until(lambda: finished(client, run_id), 20, message="the reaper")
    assert lost["state"] == "error" and lost["error"] == "worker lost"
    hold = wait_until(lambda: hold_of(client), 5, message="the hold")
    assert hold["reason"] == f"teardown did not run after run #{run_id}" and hold["until_released"]
    with app.app_context():
        assert db.session.scalars(select(EventRow.user_id).where(
            EventRow.description.contains("teardown did not run"))).all() == [ADMIN]


def test_what_a_stage_ended_as_and_when_the_environment_is_held():
    from webapp.domain import stages
    from webapp.domain.results import Summary

    assert stages.state(0, None, Summary()) == "passed"
    assert stages.state(1, None, None) == "failed"
    assert stages.state(5, None, None) == "error"  # no tests collected: not a passing setup
    assert stages.state(None, "timeout", None) == "timeout" and stages.state(-9, "cancelled", None) == "cancelled"
    assert stages.hold_reason(7, None, configured=False) is None
    assert stages.hold_reason(7, None, configured=True) == "teardown did not run after run #7"
    assert stages.hold_reason(7, {"state": "passed"}, configured=True) is None
    assert stages.hold_reason(7, {"state": "timeout"}, configured=True) == "teardown failed after run #7"
