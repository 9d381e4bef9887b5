"""Validation runs: a migration is tested by a run of its own test files once its copy ends, and ends by it.

Real workers run the copy and the run; the pytest process sees the target as CUTOVER_* variables, never a
credential; retry, cancel, the maintenance loop, the input rules, the pages."""
from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

from conftest import WORKLOAD, make_migration, make_workload, wait_until

SHOW = b"""import json, os, time


def test_target():
    print("VARS=" + json.dumps({k: v for k, v in os.environ.items() if k.startswith("CUTOVER_")}, sort_keys=True))
    print("ENVIRON=" + json.dumps(dict(os.environ), sort_keys=True), flush=True)
    open("waiting", "w").close()
    deadline = time.monotonic() + 30
    while not os.path.exists("go") and time.monotonic() < deadline:  # the test lets it end (its run directory)
        time.sleep(0.05)
    assert os.environ["CUTOVER_TARGET_CLOUD"] == "aws"
"""
FAIL = b"def test_one():\n    assert 1 == 2\n\n\ndef test_two():\n    assert 'a' == 'b'\n\n\ndef test_ok():\n    pass\n"
SLEEP = b"import time\n\n\ndef test_long():\n    time.sleep(60)\n"
SAMPLE = "sample_tests/validation/test_target.py"
CLOUD_PASSWORD, WORKLOAD_PASSWORD = "cl0ud!", WORKLOAD["credentials"]["password"]


@pytest.fixture
def config(config):
    return {**config, "ENV_LOCK_TTL_SECONDS": 3, "MAINTENANCE_INTERVAL_SECONDS": 0.5, "RUN_TIMEOUT_SECONDS": 60}


def upload(client, name: str, body: bytes, directory: str = "validate") -> str:
    response = client.post("/api/v1/test-files", data={"directory": directory, "file": (io.BytesIO(body), name)},
                           content_type="multipart/form-data")
    assert response.status_code == 201, response.json
    return response.json["path"]


def validated_migration(client, files, environment_id: int = 9, **changes) -> dict:
    source = make_workload(client, **changes)
    migration = make_migration(client, source["id"])
    response = client.patch(f"/api/v1/migrations/{migration['id']}",
                            json={"validation": {"test_files": files, "environment_id": environment_id}})
    assert response.status_code == 200, response.json
    return response.json


def get(client, migration_id: int) -> dict:
    return client.get(f"/api/v1/migrations/{migration_id}").json


def final(client, migration_id: int, timeout: float = 40) -> dict:
    return wait_until(lambda: (m := get(client, migration_id))["state"] in ("success", "error") and m, timeout,
                      message=f"migration {migration_id} to end")


def run_of(client, run_id: int) -> dict:
    return client.get(f"/api/v1/runs/{run_id}").json


def log_of(client, run_id: int) -> str:
    return client.get(f"/api/v1/runs/{run_id}/log.txt").get_data(as_text=True)


def start(client, migration_id: int) -> dict:
    response = client.post(f"/api/v1/migrations/{migration_id}/run")
    assert response.status_code == 202, response.json
    return response.json


def validating(client, migration_id: int, timeout: float = 20) -> dict:
    return wait_until(lambda: (m := get(client, migration_id))["phase"] == "validating" and m, timeout,
                      message="the copy to end and the validation to start")


# --- with real workers -------------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_passing_validation_ends_success_only_after_its_run_and_its_pytest_saw_the_target(client,
                                                                                              worker_processes):
    worker_processes(2, MIGRATION_DURATION_SECONDS=0.3)
    show = upload(client, "test_show.py", SHOW)
    migration = validated_migration(client, [show])
    assert migration["phase"] is None and migration["validation"] == {
        "test_files": [show], "environment_id": 9, "run_id": None, "state": None}
    start(client, migration["id"])
    during = validating(client, migration["id"])
    assert during["state"] == "running" and during["target"]["target_vm"] is None
    assert during["progress"]["percent"] == 100.0
    run_id = during["validation"]["run_id"]
    run = run_of(client, run_id)
    assert (run["migration_id"], run["link"], run["username"], run["environment_id"], run["test_files"]) == (
        migration["id"], f"/migrations/{migration['id']}", "admin", 9, [show])
    status = client.get(f"/api/v1/migrations/{migration['id']}/status").json
    assert status["phase"] == "validating" and status["finished"] is False
    run_dir = Path(client.application.config["RUNS_DIR"]) / str(run_id)
    wait_until(lambda: (run_dir / "waiting").exists(), 20, message="the run's test to wait for the go")
    assert run_of(client, run_id)["state"] == "running"
    assert get(client, migration["id"])["state"] == "running"  # the run is still going: not success yet
    (run_dir / "go").touch()  # now the run's test may end
    done = final(client, migration["id"])
    assert done["state"] == "success" and done["error"] is None, done
    assert done["phase"] is None and done["validation"]["state"] == "success"
    assert done["target"]["target_vm"]["ip"] == WORKLOAD["ip"]
    assert [v["name"] for v in done["target"]["target_vm"]["storage"]] == ["C:\\", "D:\\"]
    assert done["finished_at"] >= run_of(client, run_id)["finished_at"]
    text = log_of(client, run_id)
    variables = json.loads(re.search(r"^VARS=(.*)$", text, re.M).group(1))
    environment_id = run_of(client, run_id)["environment_id"]
    assert variables == {"CUTOVER_MIGRATION_ID": str(migration["id"]), "CUTOVER_TARGET_IP": WORKLOAD["ip"],
                         "CUTOVER_TARGET_CLOUD": "aws",
                         "CUTOVER_TARGET_VOLUMES": json.dumps([{"name": "C:\\", "size": 40},
                                                               {"name": "D:\\", "size": 100}]),
                         # what every run gets (issue 14), a validation run too
                         "CUTOVER_ENVIRONMENT_ID": str(environment_id), "CUTOVER_ENVIRONMENT_NAME": f"env-{environment_id}",
                         "CUTOVER_RUN_ID": str(run_id)}
    environ = json.loads(re.search(r"^ENVIRON=(.*)$", text, re.M).group(1))
    assert len(environ) > 5  # the whole environment was printed: nothing in it is a credential
    for secret in (CLOUD_PASSWORD, WORKLOAD_PASSWORD, "cloud"):  # "cloud" is the cloud username
        assert not any(secret in value for value in environ.values()), secret
    assert CLOUD_PASSWORD not in text and WORKLOAD_PASSWORD not in text
    assert not any(re.search("PASS|SECRET|TOKEN|KEY|CREDENTIAL", name) for name in environ)
    inbox = [e["description"] for e in client.get("/api/v1/events?user_id=admin").json["items"]]
    assert any(f"Migration #{migration['id']} to aws ended success" in d for d in inbox), inbox


@pytest.mark.slow
def test_a_failing_validation_ends_error_naming_its_run_and_retry_runs_only_the_validation(client,
                                                                                           worker_processes):
    worker_processes(1, MIGRATION_DURATION_SECONDS=0.3)
    failing, passing = upload(client, "test_fail.py", FAIL), SAMPLE
    migration = validated_migration(client, [failing])
    start(client, migration["id"])
    failed = final(client, migration["id"])
    run_id = failed["validation"]["run_id"]
    assert failed["state"] == "error" and failed["error"] == f"validation failed: run #{run_id} (2 failed)"
    assert failed["phase"] == "validating" and failed["validation"]["state"] == "failed"
    assert failed["target"]["target_vm"] is None
    # only the validation changes: the copy still counts, and Retry runs the validation alone
    edited = client.patch(f"/api/v1/migrations/{migration['id']}",
                          json={"validation": {"test_files": [passing], "environment_id": 9}}).json
    assert edited["progress"]["percent"] == 100.0 and edited["phase"] == "validating"
    retried = start(client, migration["id"])
    assert retried["state"] == "running" and retried["phase"] == "validating"
    assert retried["started_at"] == failed["started_at"] and retried["progress"]["percent"] == 100.0
    second = retried["validation"]["run_id"]
    assert second != run_id and retried["validation"]["test_files"] == [passing]
    done = final(client, migration["id"])
    assert done["state"] == "success", done
    assert done["started_at"] == failed["started_at"] and done["validation"]["run_id"] == second
    passed = run_of(client, second)  # the sample's tests ran (none skipped): the variables were there
    assert passed["summary"]["passed"] == 7 and passed["summary"]["skipped"] == 0, passed
    assert f"migration #{migration['id']}: {WORKLOAD['ip']} on aws with C:\\ 40 GiB, D:\\ 100 GiB" \
        in log_of(client, second)


@pytest.mark.slow
def test_cancelling_a_validating_migration_cancels_its_run(client, worker_processes):
    worker_processes(1, MIGRATION_DURATION_SECONDS=0.2)
    sleeper = upload(client, "test_sleep.py", SLEEP)
    migration = validated_migration(client, [sleeper])
    start(client, migration["id"])
    run_id = validating(client, migration["id"])["validation"]["run_id"]
    wait_until(lambda: run_of(client, run_id)["state"] == "running", 20, message="the run to start")
    assert client.post(f"/api/v1/migrations/{migration['id']}/cancel").status_code == 202
    done = final(client, migration["id"], 10)
    assert done["state"] == "error" and done["error"] == f"validation failed: run #{run_id} (cancelled)"
    assert run_of(client, run_id)["state"] == "cancelled"
    assert done["target"]["target_vm"] is None


@pytest.mark.slow
def test_a_sample_validation_passes_and_a_plain_run_of_it_is_skipped_not_failed(client, worker_processes):
    worker_processes(1, MIGRATION_DURATION_SECONDS=0.2)
    listed = [f["path"] for f in client.get("/api/v1/test-files").json]
    assert SAMPLE in listed
    plain = client.post("/api/v1/runs", json={"environment_id": 4, "test_files": [SAMPLE]}).json
    migration = validated_migration(client, [SAMPLE], environment_id=4)
    start(client, migration["id"])
    done = final(client, migration["id"])
    assert done["state"] == "success", done
    passed = run_of(client, done["validation"]["run_id"])
    assert passed["summary"]["passed"] == 7 and passed["summary"]["skipped"] == 0
    skipped = wait_until(lambda: (r := run_of(client, plain["id"]))["state"] not in ("queued", "running") and r, 20)
    assert skipped["state"] == "success" and skipped["summary"]["skipped"] == 7 and skipped["summary"]["passed"] == 0
    assert "CUTOVER_MIGRATION_ID is not set" in log_of(client, plain["id"])


# --- in-process workers (the copy, then the run) ------------------------------------------------------------

def test_a_migration_without_validation_still_ends_success_at_copy_end(client, work):
    migration = make_migration(client, make_workload(client)["id"])
    start(client, migration["id"])
    work()
    done = get(client, migration["id"])
    assert (done["state"], done["phase"], done["validation"]) == ("success", None, None)
    assert done["target"]["target_vm"] is not None


def test_the_reaper_leaves_a_validating_migration_alone_and_repairs_one_whose_run_ended(app, client, work):
    from webapp.db import update as sql_update
    from webapp.extensions import db
    from webapp.migrations import reaper, services
    from webapp.models import RunRow

    migration = validated_migration(client, [SAMPLE])
    start(client, migration["id"])
    app.config["ENV_LOCK_TTL_SECONDS"] = 3
    with app.app_context():  # only the copy: the run stays queued (environment 9 is held by nobody yet)
        from webapp.migrations import jobs

        jobs.run_migration(migration["id"])
    body = get(client, migration["id"])
    assert body["phase"] == "validating" and body["state"] == "running"
    run_id = body["validation"]["run_id"]
    with app.app_context():
        later = services.utcnow() + timedelta(seconds=app.config["MIGRATION_STALE_SECONDS"] + 60)
        assert reaper.reap(now=later)["lost"] == 0
    assert get(client, migration["id"])["state"] == "running"
    with app.app_context():  # a run that ended without its migration (cannot happen: repaired all the same)
        db.session.execute(sql_update(RunRow).where(RunRow.id == run_id)
                           .values(state="error", error="worker lost", finished_at=services.utcnow()))
        db.session.commit()
        reaper.reap(now=later)
    done = get(client, migration["id"])
    assert done["state"] == "error" and done["error"] == f"validation failed: run #{run_id} (worker lost)"


def test_a_run_cancelled_while_queued_ends_its_migration_at_once(app, client):
    from webapp.migrations import jobs

    migration = validated_migration(client, [SAMPLE], environment_id=12)
    start(client, migration["id"])
    with app.app_context():
        jobs.run_migration(migration["id"])
    run_id = get(client, migration["id"])["validation"]["run_id"]
    assert run_of(client, run_id)["state"] == "queued"
    assert client.post(f"/api/v1/runs/{run_id}/cancel").status_code == 202
    done = get(client, migration["id"])
    assert done["state"] == "error" and done["error"] == f"validation failed: run #{run_id} (cancelled)"
    assert client.get("/api/v1/environments/12").json["status"] == "idle"


def test_retry_of_a_migration_whose_copy_failed_copies_again(app, client, work):
    from webapp.db import update as sql_update
    from webapp.extensions import db
    from webapp.models import MigrationRow

    migration = validated_migration(client, [SAMPLE])
    start(client, migration["id"])
    with app.app_context():  # the copy ended in error (e.g. its worker was lost) before the validation
        db.session.execute(sql_update(MigrationRow).where(MigrationRow.id == migration["id"])
                           .values(state="error", error="worker lost", started_at=MigrationRow.queued_at))
        db.session.commit()
    failed = get(client, migration["id"])
    assert failed["phase"] == "copying"
    retried = start(client, migration["id"])
    assert retried["phase"] == "copying" and retried["started_at"] is None and retried["validation"]["run_id"] is None
    work()
    done = get(client, migration["id"])
    assert done["state"] == "success" and done["validation"]["state"] == "success", done


# --- the rule of the outcome ----------------------------------------------------------------------------------

@pytest.mark.parametrize("state, error, summary, expected", [
    ("success", None, {"failed": 0, "errors": 0}, None),
    ("failed", None, {"failed": 2, "errors": 1}, "validation failed: run #7 (3 failed)"),
    ("failed", None, None, "validation failed: run #7 (0 failed)"),
    ("cancelled", "cancelled", {"failed": 0, "errors": 0}, "validation failed: run #7 (cancelled)"),
    ("error", "worker lost", None, "validation failed: run #7 (worker lost)"),
    ("error", "sandbox unavailable: no Landlock", None, "validation failed: run #7 (sandbox unavailable: no Landlock)"),
])
def test_how_a_validation_run_ends_its_migration(state, error, summary, expected):
    from webapp.migrations.validation import outcome

    assert outcome(7, state, error, summary) == expected


# --- input ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("validation, field, message", [
    ({"test_files": [], "environment_id": 3}, "validation.test_files", "Choose at least one test file."),
    ({"test_files": ["sample_tests/nope/test_x.py"], "environment_id": 3}, "validation.test_files",
     "Not an available test file: sample_tests/nope/test_x.py"),
    ({"test_files": [SAMPLE, SAMPLE], "environment_id": 3}, "validation.test_files", f"Listed twice: {SAMPLE}"),
    ({"test_files": "sample_tests/test_passing.py", "environment_id": 3}, "validation.test_files",
     "Test files must be a list of paths."),
    ({"test_files": [SAMPLE], "environment_id": 0}, "validation.environment_id",
     "Choose an environment from 1 to 100."),
    ({"test_files": [SAMPLE]}, "validation.environment_id", "Choose an environment from 1 to 100."),
    ({"test_files": [SAMPLE], "environment_id": 3, "run_id": 5}, "validation.run_id", "This field cannot be changed."),
    ("yes", "validation", "Validation must be an object."),
])
def test_a_bad_validation_is_refused_beside_its_field(client, validation, field, message):
    source = make_workload(client)
    body = {"source_id": source["id"], "selected_mount_points": ["C:\\"], "validation": validation,
            "target": {"cloud_type": "aws", "cloud_credentials": {"username": "u", "password": "p"}}}
    response = client.post("/api/v1/migrations", json=body)
    assert response.status_code == 422, response.json
    assert response.json["error"]["fields"][field] == [message]
    migration = make_migration(client, source["id"])
    for method in (client.put, client.patch):
        response = method(f"/api/v1/migrations/{migration['id']}", json={"validation": validation})
        assert response.status_code == 422 and response.json["error"]["fields"][field] == [message]
    assert get(client, migration["id"])["validation"] is None


def test_a_disabled_environment_is_refused_and_null_removes_the_validation(client):
    assert client.patch("/api/v1/environments/5", json={"enabled": False}).status_code == 200
    migration = make_migration(client, make_workload(client)["id"])
    url = f"/api/v1/migrations/{migration['id']}"
    response = client.patch(url, json={"validation": {"test_files": [SAMPLE], "environment_id": 5}})
    assert response.status_code == 422
    assert response.json["error"]["fields"] == {
        "validation.environment_id": ["Environment 5 is disabled: choose another one."]}
    body = client.put(url, json={"validation": {"test_files": [SAMPLE], "environment_id": 6}}).json
    assert body["validation"] == {"test_files": [SAMPLE], "environment_id": 6, "run_id": None, "state": None}
    again = client.put(url, json=body)  # what GET answers may be sent back as it is
    assert again.status_code == 200, again.json
    assert client.patch(url, json={"selected_mount_points": ["C:\\"]}).json["validation"]["environment_id"] == 6
    assert client.patch(url, json={"validation": None}).json["validation"] is None


def test_a_running_migration_s_validation_cannot_be_edited(client, work):
    migration = validated_migration(client, [SAMPLE])
    start(client, migration["id"])
    response = client.patch(f"/api/v1/migrations/{migration['id']}", json={"validation": None})
    assert response.status_code == 409 and get(client, migration["id"])["validation"] is not None
    work()


def test_a_viewer_cannot_set_a_validation(client, as_role):
    migration = make_migration(client, make_workload(client)["id"])
    viewer = as_role("viewer")
    body = {"validation": {"test_files": [SAMPLE], "environment_id": 3}}
    assert viewer.patch(f"/api/v1/migrations/{migration['id']}", json=body).status_code == 403
    form = {"selected_mount_points": ["C:\\"], "cloud_type": "aws", "cloud_username": "u",
            "validation_test_files": [SAMPLE], "validation_environment_id": "3", "save": "Save migration"}
    assert viewer.post(f"/migrations/{migration['id']}/edit", data=form).status_code == 403
    assert get(client, migration["id"])["validation"] is None


def _form(source_id, **changes) -> dict:
    return {"source_id": str(source_id), "selected_mount_points": ["C:\\"], "cloud_type": "aws",
            "cloud_username": "u", "cloud_password": "p", "save": "Save migration", **changes}


def test_the_form_sets_the_validation_and_shows_a_refusal_beside_its_field(client):
    source = make_workload(client)
    page = client.get("/migrations/new").get_data(as_text=True)
    assert 'id="validation_test_files" name="validation_test_files" multiple' in page
    assert f'value="{SAMPLE}"' in page and 'id="validation_environment_id"' in page
    refused = client.post("/migrations/new", data=_form(source["id"], validation_test_files=[SAMPLE],
                                                         validation_environment_id=""))
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    field = re.search(r'<div class="field has-error">\s*<label for="validation_environment_id".*?</div>', html, re.S)
    assert field and "Choose an environment from 1 to 100." in field.group(0)
    picker = re.search(r'<div id="validation-picker" class="field has-error".*?</div>',
                       client.post("/migrations/new", data=_form(source["id"], validation_environment_id="3"))
                       .get_data(as_text=True), re.S)
    assert picker and "Choose at least one test file." in picker.group(0)
    created = client.post("/migrations/new", data=_form(source["id"], validation_test_files=[SAMPLE],
                                                        validation_environment_id="3"))
    assert created.status_code == 303
    migration_id = int(created.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    assert get(client, migration_id)["validation"]["test_files"] == [SAMPLE]
    edit = client.get(f"/migrations/{migration_id}/edit").get_data(as_text=True)
    assert re.search(rf'<option value="{re.escape(SAMPLE)}" selected', edit)
    form = _form(source["id"], validation_test_files=[], validation_environment_id="")
    del form["source_id"]
    assert client.post(f"/migrations/{migration_id}/edit", data=form).status_code == 303
    assert get(client, migration_id)["validation"] is None


# --- pages ------------------------------------------------------------------------------------------------

def test_the_detail_page_shows_the_run_s_own_partials_and_polls_until_the_migration_is_final(app, client):
    from webapp.migrations import jobs

    migration = validated_migration(client, [SAMPLE], environment_id=13)
    mid = migration["id"]
    start(client, mid)
    copying = client.get(f"/migrations/{mid}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'hx-trigger="every 1s"' in copying and 'id="validation-run"' not in copying
    with app.app_context():
        jobs.run_migration(mid)
    run_id = get(client, mid)["validation"]["run_id"]
    page = client.get(f"/migrations/{mid}").get_data(as_text=True)
    assert f'hx-get="/runs/{run_id}"' in page and 'id="run-status"' in page  # the run's status partial
    assert f'hx-get="/runs/{run_id}/log?offset=0"' in page and 'id="run-log"' in page  # its live log tail
    assert "in line</strong>" in page or "starting" in page  # its queue position
    assert f'hx-get="/migrations/{mid}?run={run_id}"' in page  # the migration's own poll goes on
    # the first poll after the copy brings the validation run out of band; later polls do not repeat it
    fragment = client.get(f"/migrations/{mid}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'id="validation-run" class="validation" hx-swap-oob="true"' in fragment
    quiet = client.get(f"/migrations/{mid}?run={run_id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'id="validation-run"' not in quiet and 'hx-trigger="every 1s"' in quiet
    run_page = client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert f'<a href="/migrations/{mid}">validates migration\n      #{mid}</a>' in run_page
    client.post(f"/api/v1/runs/{run_id}/cancel")
    ended = client.get(f"/migrations/{mid}?run={run_id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "hx-trigger" not in ended and f"validation failed: run #{run_id} (cancelled)" in ended


def test_a_plain_run_has_no_migration(client):
    run = client.post("/api/v1/runs", json={"environment_id": 2, "test_files": [SAMPLE]}).json
    assert run["migration_id"] is None and run["link"] is None
    assert "validates migration" not in client.get(f"/runs/{run['id']}").get_data(as_text=True)


def test_an_environment_disabled_before_the_copy_ends_fails_the_validation_and_retry_waits_for_it(app, client):
    from webapp.migrations import jobs

    migration = validated_migration(client, [SAMPLE], environment_id=14)
    start(client, migration["id"])
    assert client.patch("/api/v1/environments/14", json={"enabled": False}).status_code == 200
    with app.app_context():
        jobs.run_migration(migration["id"])
    failed = get(client, migration["id"])
    assert failed["state"] == "error" and failed["error"] == "validation failed: environment 14 is disabled"
    assert failed["phase"] == "validating" and failed["progress"]["percent"] == 100.0
    assert failed["validation"]["run_id"] is None and failed["target"]["target_vm"] is None
    refused = client.post(f"/api/v1/migrations/{migration['id']}/run")
    assert refused.status_code == 422, refused.json
    assert refused.json["error"]["code"] == "preflight_failed"  # the preflight's validation check refuses it
    assert [c["name"] for c in refused.json["error"]["checks"]] == ["validation"]
    assert "14" in refused.json["error"]["checks"][0]["message"]
    assert get(client, migration["id"])["state"] == "error"
    client.patch("/api/v1/environments/14", json={"enabled": True})
    retried = start(client, migration["id"])
    assert retried["state"] == "running" and retried["validation"]["run_id"] is not None
    assert retried["started_at"] == failed["started_at"]
