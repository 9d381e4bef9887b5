"""Preflight (issue 11, section 2): the checks a migration passes before it may run, over HTTP as users call them
(POST /api/v1/migrations/<id>/preflight, Run through the API and the page), each failing on its own; a run they
refuse is 422 ``preflight_failed`` with the failed checks and leaves the migration exactly as it was; the seed's
C:\\ rule still ends it ``error``; the detail page lists the checks (without decrypting on the status poll)."""
from __future__ import annotations

import io
import threading

import pytest
from cryptography.fernet import Fernet
from conftest import ADMIN, client_as, make_migration, make_workload, stored_migration

from webapp import create_app
from webapp.domain import preflight as rules

NAMES = ["system_volume", "volumes", "credentials", "exclusive_source", "validation"]
PASSING = "sample_tests/test_passing.py"


# --- helpers -------------------------------------------------------------------------------------

def preflight(client, migration_id: int):
    return client.post(f"/api/v1/migrations/{migration_id}/preflight")


def by_name(body: dict) -> dict:
    return {c["name"]: c for c in body["checks"]}


def failing(body: dict) -> list[str]:
    return [c["name"] for c in body["checks"] if not c["ok"]]


def with_row(app, migration_id: int, **values) -> None:
    """Write columns of a migration straight into the database (what another part of the app would)."""
    from webapp.extensions import db
    from webapp.models import MigrationRow

    with app.app_context():
        row = db.session.get(MigrationRow, migration_id)
        for name, value in values.items():
            setattr(row, name, value)
        db.session.commit()


COLUMNS = ("state", "error", "progress", "job_id", "requested_by", "queued_at", "started_at", "heartbeat_at",
           "finished_at", "updated_at", "cancel_requested", "phase", "selected", "cloud_password_enc")


def stored(app, migration_id: int) -> dict:
    return stored_migration(app, migration_id, COLUMNS)


def queued_jobs(app) -> int:
    """Migration jobs in the queues (a refusal that ends the migration also queues its notification)."""
    return sum(j.startswith("migration-") for q in app.extensions["queues"].values() for j in q.job_ids)


def run_refusals(client) -> list[dict]:
    return [e["details"] for e in client.get("/api/v1/audit?action=migration.run").json["items"]
            if "refused" in e["details"]]


@pytest.fixture
def source(client):
    return make_workload(client)


@pytest.fixture
def migration(client, source):
    return make_migration(client, source["id"])


# --- the rules, plain Python ---------------------------------------------------------------------

@pytest.mark.parametrize("selected, ok", [(["C:\\", "D:\\"], True), (["c:"], True), (["D:\\"], False), ([], False)])
def test_rule_system_volume(selected, ok):
    check = rules.system_volume(selected)
    assert (check.name, check.ok) == ("system_volume", ok)
    assert "C:\\" in check.message


@pytest.mark.parametrize("selected, storage, ok, text", [
    (["C:\\", "D:\\"], ["C:\\", "D:\\", "E:\\"], True, "Every selected volume is still a volume of 10.0.0.5."),
    (["C:\\", "d:"], ["C:\\", "D:\\"], True, "Every selected volume"),
    (["C:\\", "D:\\"], ["C:\\"], False, "D:\\ is no longer a volume of 10.0.0.5."),
    (["C:\\", "D:\\", "E:\\"], ["C:\\"], False, "D:\\, E:\\ are no longer volumes of 10.0.0.5."),
    (["C:\\"], None, False, "The source workload 10.0.0.5 no longer exists."),
])
def test_rule_volumes(selected, storage, ok, text):
    check = rules.volumes(selected, storage, "10.0.0.5")
    assert check.ok is ok and check.message.startswith(text), check.message


def test_rule_credentials_names_what_cannot_be_read_and_what_to_do():
    assert rules.credentials([]).ok
    check = rules.credentials(["the cloud password of this migration", "the password of the source workload x"])
    assert not check.ok and check.message.startswith("The cloud password of this migration and the password of")
    assert "CREDENTIALS_KEY" in check.message and "operator" in check.message


def test_rule_exclusive_source():
    assert rules.exclusive_source([], "10.0.0.5").ok
    check = rules.exclusive_source([7], "10.0.0.5")
    assert not check.ok and check.message.startswith("Migration #7 of 10.0.0.5 is running")
    assert "#3, #4" in rules.exclusive_source([3, 4], "h").message


@pytest.mark.parametrize("spec, missing, env, ok, text", [
    (None, [], None, True, "No validation run."),
    ({"test_files": ["a/test_a.py"], "environment_id": 3}, [], ("env-3", True), True, "1 validation test file"),
    ({"test_files": ["a/test_a.py"], "environment_id": 3}, ["a/test_a.py"], ("env-3", True), False,
     "Validation test file not found: a/test_a.py"),
    ({"test_files": [], "environment_id": 3}, [], ("env-3", False), False, "Validation environment #3 (env-3) is disabled"),
    ({"test_files": [], "environment_id": 999}, [], None, False, "Validation environment #999 does not exist"),
])
def test_rule_validation(spec, missing, env, ok, text):
    check = rules.validation(spec, missing, env)
    assert check.ok is ok and check.message.startswith(text), check.message


# --- POST /api/v1/migrations/<id>/preflight --------------------------------------------------------

def test_every_check_passes_on_a_good_migration(app, client, migration):
    before = stored(app, migration["id"])
    response = preflight(client, migration["id"])
    assert response.status_code == 200, response.json
    assert response.json["ok"] is True
    assert [c["name"] for c in response.json["checks"]] == NAMES
    assert all(c["ok"] and c["message"] for c in response.json["checks"])
    assert set(response.json["checks"][0]) == {"name", "ok", "message"}
    assert by_name(response.json)["validation"]["message"] == "No validation run."
    assert stored(app, migration["id"]) == before  # it changes nothing
    assert client.get("/api/v1/audit?action=migration.run").json["items"] == []


def test_a_volume_dropped_from_the_source_since_the_migration_was_made_fails_volumes(client, source, migration):
    edited = client.put(f"/api/v1/workloads/{source['id']}",
                        json={"storage": [{"name": "C:\\", "size": 40}, {"name": "E:\\", "size": 60}]})
    assert edited.status_code == 200, edited.json
    body = preflight(client, migration["id"]).json
    assert body["ok"] is False and failing(body) == ["volumes"]
    assert by_name(body)["volumes"]["message"].startswith("D:\\ is no longer a volume of 10.0.0.10.")


def test_a_cloud_password_under_an_old_key_no_longer_configured_fails_credentials(app, client, migration):
    old = Fernet(Fernet.generate_key())  # a key this app does not have (any more)
    with_row(app, migration["id"], cloud_password_enc=old.encrypt(b"cl0ud!").decode())
    response = preflight(client, migration["id"])
    assert response.status_code == 200
    assert failing(response.json) == ["credentials"]
    message = by_name(response.json)["credentials"]["message"]
    assert message.startswith("The cloud password of this migration cannot be read") and "CREDENTIALS_KEY" in message
    assert "10.0.0.10" not in message  # the workload's own password still reads


def test_after_the_key_was_dropped_both_passwords_fail_credentials_and_run_says_so_without_a_500(config):
    with_a = create_app({**config, "CREDENTIALS_KEY": Fernet.generate_key().decode()})
    admin = client_as(with_a, ADMIN)
    workload = make_workload(admin)
    migration = make_migration(admin, workload["id"])
    with_a.extensions["db"].kw["bind"].dispose()
    with_b = create_app({**config, "CREDENTIALS_KEY": Fernet.generate_key().decode()})  # the old key dropped
    admin = client_as(with_b, ADMIN)
    body = preflight(admin, migration["id"]).json
    assert failing(body) == ["credentials"]
    message = by_name(body)["credentials"]["message"]
    assert "the cloud password of this migration" in message.lower() and "10.0.0.10" in message
    before = stored(with_b, migration["id"])
    ran = admin.post(f"/api/v1/migrations/{migration['id']}/run")
    assert ran.status_code == 422 and ran.json["error"]["code"] == "preflight_failed", ran.json
    assert [c["name"] for c in ran.json["error"]["checks"]] == ["credentials"]
    page = admin.post(f"/migrations/{migration['id']}/run", headers={"HX-Request": "true"})
    assert page.status_code == 200 and "cannot be read with the current CREDENTIALS_KEY" in page.get_data(as_text=True)
    assert stored(with_b, migration["id"]) == before
    with_b.extensions["db"].kw["bind"].dispose()


def test_another_running_migration_of_the_same_source_fails_exclusive_source(app, client, source, migration):
    other = make_migration(client, source["id"])
    elsewhere = make_migration(client, make_workload(client, ip="10.0.0.11")["id"])
    with_row(app, elsewhere["id"], state="running")  # another source: no matter
    assert preflight(client, migration["id"]).json["ok"] is True
    with_row(app, other["id"], state="running")
    body = preflight(client, migration["id"]).json
    assert failing(body) == ["exclusive_source"]
    assert by_name(body)["exclusive_source"]["message"].startswith(f"Migration #{other['id']} of 10.0.0.10 is running")
    assert preflight(client, other["id"]).json["ok"] is True  # a migration does not exclude itself
    with_row(app, other["id"], state="error")
    assert preflight(client, migration["id"]).json["ok"] is True


def test_a_really_running_migration_of_the_same_source_refuses_the_run(app, client, source, migration):
    other = make_migration(client, source["id"])
    assert client.post(f"/api/v1/migrations/{other['id']}/run").status_code == 202  # queued: running, no worker yet
    ran = client.post(f"/api/v1/migrations/{migration['id']}/run")
    assert ran.status_code == 422 and [c["name"] for c in ran.json["error"]["checks"]] == ["exclusive_source"]
    assert client.get(f"/api/v1/migrations/{migration['id']}").json["state"] == "not_started"
    assert queued_jobs(app) == 1  # only the other one's job


def test_two_migrations_of_one_source_run_at_the_same_moment_start_one_only(app, client):
    """Each run locks its migration; the preflight also locks the source, so both cannot pass exclusive_source."""
    second = client_as(app, ADMIN)
    for n in range(5):
        source = make_workload(client, ip=f"10.0.3.{n}")
        pair = [make_migration(client, source["id"])["id"] for _ in range(2)]
        barrier, answers = threading.Barrier(2), {}

        def run(who, migration_id):
            barrier.wait()
            answers[migration_id] = who.post(f"/api/v1/migrations/{migration_id}/run").status_code

        threads = [threading.Thread(target=run, args=(who, m)) for who, m in zip((client, second), pair)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        assert sorted(answers.values()) == [202, 422], answers
        states = sorted(client.get(f"/api/v1/migrations/{m}").json["state"] for m in pair)
        assert states == ["not_started", "running"]


@pytest.mark.parametrize("validation, text", [
    ({"test_files": [PASSING, "uploads/gone/test_gone.py"], "environment_id": 4},
     "Validation test file not found: uploads/gone/test_gone.py"),
    ({"test_files": [PASSING], "environment_id": 5}, "Validation environment #5 (env-5) is disabled"),
    ({"test_files": [PASSING], "environment_id": 4242}, "Validation environment #4242 does not exist"),
])
def test_a_validation_with_a_missing_file_or_an_unusable_environment_fails_validation(app, client, migration,
                                                                                        validation, text):
    from webapp.extensions import db
    from webapp.models import EnvironmentRow

    with app.app_context():
        db.session.get(EnvironmentRow, 5).enabled = False
        env_name = db.session.get(EnvironmentRow, 5).name
        db.session.commit()
    with_row(app, migration["id"], validation=validation)
    body = preflight(client, migration["id"]).json
    assert failing(body) == ["validation"], body
    assert by_name(body)["validation"]["message"].startswith(text.replace("env-5", env_name))


def test_a_validation_whose_files_exist_on_an_enabled_environment_passes(app, client, migration):
    uploaded = client.post("/api/v1/test-files", content_type="multipart/form-data", data={
        "directory": "checks", "file": (io.BytesIO(b"def test_ok():\n    pass\n"), "test_ok.py")})
    assert uploaded.status_code == 201, uploaded.json
    with_row(app, migration["id"], validation={"test_files": [PASSING, "uploads/checks/test_ok.py"],
                                               "environment_id": 4})
    check = by_name(preflight(client, migration["id"]).json)["validation"]
    assert check["ok"] is True and check["message"].startswith("2 validation test files found"), check


# --- Run refused -----------------------------------------------------------------------------------

@pytest.mark.parametrize("state", ["not_started", "error"])
def test_a_refused_run_is_422_preflight_failed_lists_the_failed_checks_and_leaves_the_migration_as_it_was(
        app, client, source, migration, state):
    if state == "error":
        with_row(app, migration["id"], state="error", error="worker lost", requested_by="someone-else")
    client.put(f"/api/v1/workloads/{source['id']}", json={"storage": [{"name": "C:\\", "size": 40}]})
    other = make_migration(client, source["id"], selected=("C:\\",))
    with_row(app, other["id"], state="running", job_id="migration-other")
    with_row(app, migration["id"], validation={"test_files": ["uploads/x/test_gone.py"], "environment_id": 1})
    before, api_before = stored(app, migration["id"]), client.get(f"/api/v1/migrations/{migration['id']}").json
    response = client.post(f"/api/v1/migrations/{migration['id']}/run", json={})
    assert response.status_code == 422, response.json
    error = response.json["error"]
    assert error["code"] == "preflight_failed" and error["fields"] == {}
    assert [c["name"] for c in error["checks"]] == ["volumes", "exclusive_source", "validation"]
    assert all(c["ok"] is False and c["message"] for c in error["checks"])
    assert error["checks"] == [c for c in preflight(client, migration["id"]).json["checks"] if not c["ok"]]
    assert all(c["message"] in error["message"] for c in error["checks"])
    assert stored(app, migration["id"]) == before  # state, error, progress, job id, requester: all as they were
    assert client.get(f"/api/v1/migrations/{migration['id']}").json == api_before
    assert queued_jobs(app) == 0
    assert run_refusals(client) == [{"refused": "preflight_failed",
                                     "failed": ["volumes", "exclusive_source", "validation"]}]


def test_once_the_checks_pass_the_run_goes_through(app, client, source, migration, work):
    client.put(f"/api/v1/workloads/{source['id']}", json={"storage": [{"name": "C:\\", "size": 40}]})
    assert client.post(f"/api/v1/migrations/{migration['id']}/run").status_code == 422
    assert client.patch(f"/api/v1/migrations/{migration['id']}", json={"selected_mount_points": ["C:\\"]}).status_code == 200
    assert client.post(f"/api/v1/migrations/{migration['id']}/run").status_code == 202
    work()
    assert client.get(f"/api/v1/migrations/{migration['id']}").json["state"] == "success"


def test_without_c_the_seed_rule_still_ends_the_migration_in_error_whatever_else_fails(app, client, source):
    migration = make_migration(client, source["id"], selected=("D:\\",))
    other = make_migration(client, source["id"])
    with_row(app, other["id"], state="running")
    response = client.post(f"/api/v1/migrations/{migration['id']}/run")
    assert response.status_code == 422 and response.json["error"]["code"] == "system_volume_required"
    assert response.json["error"]["fields"] == {"selected_mount_points": ["The system volume C:\\ must be selected."]}
    assert set(response.json["error"]) == {"code", "message", "fields"}  # the seed's body, exactly
    assert failing(preflight(client, migration["id"]).json) == ["system_volume", "exclusive_source"]
    body = client.get(f"/api/v1/migrations/{migration['id']}").json
    assert body["state"] == "error" and body["error"] == "The system volume C:\\ must be selected."
    assert run_refusals(client) == [{"refused": "system_volume_required"}]
    assert queued_jobs(app) == 0


def test_a_running_migration_is_still_409_not_a_preflight_refusal(client, migration):
    assert client.post(f"/api/v1/migrations/{migration['id']}/run").status_code == 202
    again = client.post(f"/api/v1/migrations/{migration['id']}/run")
    assert again.status_code == 409 and again.json["error"]["code"] == "invalid_state"


# --- who may, and what does not exist --------------------------------------------------------------

def test_a_viewer_may_not_call_preflight_and_an_operator_may(as_role, migration):
    refused = preflight(as_role("viewer"), migration["id"])
    assert refused.status_code == 403 and refused.json["error"]["code"] == "forbidden"
    assert preflight(as_role("operator"), migration["id"]).status_code == 200


def test_an_unknown_migration_is_404(client):
    for response in (preflight(client, 4242), client.get("/migrations/4242/preflight")):
        assert response.status_code == 404
    assert preflight(client, 4242).json["error"]["code"] == "not_found"


def test_preflight_without_a_token_is_401(anon_client, migration):
    assert preflight(anon_client, migration["id"]).status_code == 401


# --- the pages -------------------------------------------------------------------------------------

def test_the_detail_page_lists_every_check_before_run(client, source, migration):
    client.put(f"/api/v1/workloads/{source['id']}", json={"storage": [{"name": "C:\\", "size": 40}]})
    page = client.get(f"/migrations/{migration['id']}").get_data(as_text=True)
    section = page[page.index('<section id="preflight"'):]
    section = section[:section.index("</section>")]
    assert "<h2>Preflight</h2>" in section
    for name in NAMES:
        assert f'data-check="{name}"' in section
    assert section.count("✓ ok") == 4 and section.count("✗ failed") == 1
    assert "D:\\ is no longer a volume of 10.0.0.10." in section
    assert f'href="/migrations/{migration["id"]}/preflight"' in section and "Check again" in section
    assert page.index('id="migration-status"') < page.index('id="preflight"')  # below the status, beside Run


def test_check_again_answers_the_fragment_to_htmx_and_the_whole_page_to_a_browser(client, migration):
    url = f"/migrations/{migration['id']}/preflight"
    fragment = client.get(url, headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    text = fragment.get_data(as_text=True)
    assert '<section id="preflight"' in text and "<html" not in text
    assert "Every check passed" in text
    full = client.get(url).get_data(as_text=True)
    assert "<html" in full and "Every check passed" in full and 'id="migration-status"' in full


def test_the_status_poll_never_decrypts_only_the_full_page_does(app, client, migration, monkeypatch):
    from webapp.extensions import vault

    calls = []
    real = vault.decrypt
    monkeypatch.setattr(vault, "decrypt", lambda token: calls.append(1) or real(token))
    poll = client.get(f"/migrations/{migration['id']}", headers={"HX-Request": "true"})
    assert poll.status_code == 200 and "Preflight" not in poll.get_data(as_text=True)
    assert calls == []
    assert "<h2>Preflight</h2>" in client.get(f"/migrations/{migration['id']}").get_data(as_text=True)
    assert len(calls) == 2  # the cloud password and the source's, once each


def test_the_section_is_for_migrations_that_may_run_and_for_who_may_run_them(app, client, as_role, migration):
    viewer = as_role("viewer")
    assert "<h2>Preflight</h2>" not in viewer.get(f"/migrations/{migration['id']}").get_data(as_text=True)
    assert viewer.get(f"/migrations/{migration['id']}/preflight").status_code == 403
    assert "<h2>Preflight</h2>" in as_role("operator").get(f"/migrations/{migration['id']}").get_data(as_text=True)
    with_row(app, migration["id"], state="error", error="worker lost")
    assert "<h2>Preflight</h2>" in client.get(f"/migrations/{migration['id']}").get_data(as_text=True)
    for state in ("running", "success"):
        with_row(app, migration["id"], state=state)
        assert "<h2>Preflight</h2>" not in client.get(f"/migrations/{migration['id']}").get_data(as_text=True)


def test_a_run_refused_on_the_page_shows_why_beside_the_button_and_changes_nothing(app, client, source, migration):
    client.put(f"/api/v1/workloads/{source['id']}", json={"storage": [{"name": "C:\\", "size": 40}]})
    before = stored(app, migration["id"])
    htmx = client.post(f"/migrations/{migration['id']}/run", headers={"HX-Request": "true"})
    assert htmx.status_code == 200
    text = htmx.get_data(as_text=True)
    assert 'id="migration-status"' in text and "Preflight failed: D:\\ is no longer a volume of 10.0.0.10." in text
    oob = text[text.index('<section id="preflight" class="preflight" hx-swap-oob="true">'):]
    assert 'data-check="volumes">✗ failed' in oob  # the checks as they are now, beside the refusal
    plain = client.post(f"/migrations/{migration['id']}/run")
    assert plain.status_code == 303
    shown = client.get(plain.headers["Location"]).get_data(as_text=True)
    assert "Preflight failed: D:\\ is no longer a volume of 10.0.0.10." in shown and "✗ failed" in shown
    assert stored(app, migration["id"]) == before
    assert [d["refused"] for d in run_refusals(client)] == ["preflight_failed", "preflight_failed"]


def test_a_run_started_on_the_page_empties_the_preflight_section(client, migration):
    text = client.post(f"/migrations/{migration['id']}/run", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "badge-running" in text
    oob = text[text.index('<section id="preflight" class="preflight" hx-swap-oob="true">'):]
    assert "Preflight" not in oob[:oob.index("</section>")]


def test_the_page_run_without_c_still_ends_in_error(client, source):
    migration = make_migration(client, source["id"], selected=("D:\\",))
    response = client.post(f"/migrations/{migration['id']}/run", headers={"HX-Request": "true"})
    assert response.status_code == 200 and "C:\\ must be selected" in response.get_data(as_text=True)
    assert client.get(f"/api/v1/migrations/{migration['id']}").json["state"] == "error"


def test_the_openapi_document_names_every_check(client):
    schema = client.get("/api/openapi.json").json["components"]["schemas"]
    assert set(schema) >= {"Preflight", "PreflightCheck"}
    assert all(f"`{n}`" in schema["PreflightCheck"]["properties"]["name"]["description"] for n in NAMES)
    assert tuple(NAMES) == rules.NAMES
