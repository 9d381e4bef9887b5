"""The audit log: every state change writes exactly one entry, in the same transaction, naming who (actor),
how (via web, api or cli), from where (ip), what and to what; never a password or a token. A refused
change writes nothing (but a failed sign-in). The log can be read and filtered, never changed."""
from __future__ import annotations

import base64
import html
import io
import json
import re
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest
from sqlalchemy import select

from conftest import world_fixtures, ADMIN, ADMIN_PASSWORD, PASSWORD, WORKLOAD, client_as, make_user

pytestmark = pytest.mark.one_database  # that each action is audited does not depend on the database

PASSING = "sample_tests/test_passing.py"
QUICK = b"def test_quick():\n    assert sum(range(10)) == 45\n"
IP = "192.0.2.44"
AT = {"environ_base": {"REMOTE_ADDR": IP}}
CLOUD_PASSWORD = "cl0ud-Secret!"
NEW_PASSWORD = "a-New-Secret-pw-9"
TARGET = {"cloud_type": "aws", "cloud_credentials": {"username": "cloud", "password": CLOUD_PASSWORD}}


def entries(app, after: int = 0) -> list:
    from webapp.extensions import db
    from webapp.models import AuditRow

    with app.app_context():
        rows = list(db.session.scalars(select(AuditRow).where(AuditRow.id > after).order_by(AuditRow.id)))
        db.session.expunge_all()
    return rows


def last_id(app) -> int:
    found = entries(app)
    return found[-1].id if found else 0


def dump(rows) -> str:
    return json.dumps([{"actor": r.actor, "via": r.via, "action": r.action, "target": r.target, "ip": r.ip,
                        "details": r.details} for r in rows])


def upload(client, name="test_quick.py", body=QUICK, directory="smoke", **kwargs):
    return client.post("/api/v1/test-files", content_type="multipart/form-data",
                       data={"directory": directory, "file": (io.BytesIO(body), name)}, **kwargs)


def basic(username: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def build_world(app, client) -> dict:
    """As in test_access: workloads 1 (in use), 2 and 3, migration 1 (not started) and 2 (running, of workload 3:
    migration 1 passes its preflight), run 1 (queued), a pending event, an upload, the viewer ``victim`` with a
    token, environment 1 held by run 1."""
    assert upload(client).status_code == 201
    w1 = client.post("/api/v1/workloads", json=WORKLOAD).json["id"]
    w2 = client.post("/api/v1/workloads", json={**WORKLOAD, "ip": "10.0.0.11"}).json["id"]
    body = {"source_id": w1, "selected_mount_points": ["C:\\"], "target": TARGET}
    m1 = client.post("/api/v1/migrations", json=body).json["id"]
    w3 = client.post("/api/v1/workloads", json={**WORKLOAD, "ip": "10.0.0.12"}).json["id"]
    m2 = client.post("/api/v1/migrations", json={**body, "source_id": w3}).json["id"]
    assert client.post(f"/api/v1/migrations/{m2}/run").status_code == 202
    run = client.post("/api/v1/runs", json={"environment_id": 1, "test_files": [PASSING]}).json["id"]
    event = client.post("/api/v1/events", json={"user_id": "someone", "description": "hello"}).json["id"]
    make_user(app, "victim", "viewer")
    victim = client_as(app, "victim")
    victim_token = victim.get("/api/v1/tokens").json["items"][0]["id"]
    return {"w1": w1, "w2": w2, "m1": m1, "m2": m2, "run": run, "event": event, "victim_token": victim_token,
            "upload": "uploads/smoke/test_quick.py", "secrets": [victim.token, client.token]}


# As in test_access: on SQLite the world is built once per process and each test gets a copy of all of it.

saved, config, client, world = world_fixtures(build_world)  # conftest.world_fixtures


def workload_form(**changes) -> dict:
    return {"ip": "10.0.0.60", "username": "admin", "password": "form-Secret-pw", "domain": "",
            "storage-0-name": "C:\\", "storage-0-size": "40", "save": "Save workload", **changes}


def new_id(response, key="id"):
    assert response.status_code < 300, (response.status_code, response.data[:300])
    return response.json[key]


def location_id(response) -> str:
    assert response.status_code == 303, (response.status_code, response.data[:300])
    return response.headers["Location"].rstrip("/").rsplit("/", 1)[-1]


# (name, via, request, [actions], target): ``request(client, anon, world)`` makes the one request and
# returns the target's id when only the answer tells it (``{}`` in ``target`` is filled with it).
CASES = [
    # --- the API --------------------------------------------------------------------------------------
    ("workload create", "api", lambda c, a, w: new_id(c.post("/api/v1/workloads", json={**WORKLOAD, "ip": "10.0.0.50"},
                                                             **AT)), ["workload.create"], "workload:{}"),
    ("workload import", "api", lambda c, a, w: c.post("/api/v1/workloads/import", content_type="text/csv", data=(
        "ip,username,password,domain,volumes\n10.0.0.51,u,import-Secret-pw,,C:\\:1\n"), **AT),
     ["workload.import"], "workloads"),
    ("workload update", "api", lambda c, a, w: c.patch(f"/api/v1/workloads/{w['w2']}", json={
        "credentials": {"username": "u", "password": "upd-Secret-pw"}}, **AT), ["workload.update"], "workload:{w2}"),
    ("workload delete", "api", lambda c, a, w: c.delete(f"/api/v1/workloads/{w['w2']}", **AT),
     ["workload.delete"], "workload:{w2}"),
    ("migration create", "api", lambda c, a, w: new_id(c.post("/api/v1/migrations", json={
        "source_id": w["w2"], "selected_mount_points": ["C:\\"], "target": TARGET}, **AT)),
     ["migration.create"], "migration:{}"),
    ("migration update", "api", lambda c, a, w: c.patch(f"/api/v1/migrations/{w['m1']}", json={
        "selected_mount_points": ["C:\\", "D:\\"]}, **AT), ["migration.update"], "migration:{m1}"),
    ("migration run", "api", lambda c, a, w: c.post(f"/api/v1/migrations/{w['m1']}/run", **AT),
     ["migration.run"], "migration:{m1}"),
    ("migration cancel", "api", lambda c, a, w: c.post(f"/api/v1/migrations/{w['m2']}/cancel", **AT),
     ["migration.cancel"], "migration:{m2}"),
    ("migration delete", "api", lambda c, a, w: c.delete(f"/api/v1/migrations/{w['m1']}", **AT),
     ["migration.delete"], "migration:{m1}"),
    ("run create", "api", lambda c, a, w: new_id(c.post("/api/v1/runs", json={
        "environment_id": 2, "test_files": [PASSING]}, **AT)), ["run.create"], "run:{}"),
    ("run cancel", "api", lambda c, a, w: c.post(f"/api/v1/runs/{w['run']}/cancel", **AT), ["run.cancel"],
     "run:{run}"),
    ("run rerun", "api", lambda c, a, w: new_id(c.post(f"/api/v1/runs/{w['run']}/rerun", **AT)), ["run.rerun"],
     "run:{}"),
    ("test file upload", "api", lambda c, a, w: upload(c, "test_new.py", **AT), ["testfile.upload"],
     "testfile:uploads/smoke/test_new.py"),
    ("test file replace", "api", lambda c, a, w: c.post("/api/v1/test-files", content_type="multipart/form-data", data={
        "directory": "smoke", "overwrite": "true", "file": (io.BytesIO(QUICK + b"#2\n"), "test_quick.py")}, **AT),
     ["testfile.replace"], "testfile:uploads/smoke/test_quick.py"),
    ("test file delete", "api", lambda c, a, w: c.delete(f"/api/v1/test-files/{w['upload']}", **AT),
     ["testfile.delete"], "testfile:uploads/smoke/test_quick.py"),
    ("environment update", "api", lambda c, a, w: c.patch("/api/v1/environments/3", json={"enabled": False}, **AT),
     ["environment.update"], "environment:3"),
    ("environment unlock", "api", lambda c, a, w: c.post("/api/v1/environments/1/unlock", **AT),
     ["environment.unlock"], "environment:1"),
    ("event create", "api", lambda c, a, w: new_id(c.post("/api/v1/events", json={"user_id": "x", "description": "d"},
                                                          **AT)), ["event.create"], "event:{}"),
    ("event update", "api", lambda c, a, w: c.patch(f"/api/v1/events/{w['event']}", json={"user_id": "y"}, **AT),
     ["event.update"], "event:{event}"),
    ("event status", "api", lambda c, a, w: c.patch(f"/api/v1/events/{w['event']}", json={"status": "processed"},
                                                    **AT), ["event.status"], "event:{event}"),
    ("user create", "api", lambda c, a, w: c.post("/api/v1/users", json={"username": "newbie", "password": NEW_PASSWORD},
                                                  **AT), ["user.create"], "user:newbie"),
    ("user role", "api", lambda c, a, w: c.patch("/api/v1/users/victim", json={"role": "operator"}, **AT),
     ["user.role"], "user:victim"),
    ("user disable", "api", lambda c, a, w: c.patch("/api/v1/users/victim", json={"disabled": True}, **AT),
     ["user.disable"], "user:victim"),
    ("user password", "api", lambda c, a, w: c.patch("/api/v1/users/victim", json={"password": NEW_PASSWORD}, **AT),
     ["user.password"], "user:victim"),
    ("token create", "api", lambda c, a, w: new_id(c.post("/api/v1/tokens", json={"name": "ci"}, **AT)),
     ["token.create"], "token:{}"),
    ("token revoke", "api", lambda c, a, w: c.delete(f"/api/v1/tokens/{w['victim_token']}", **AT), ["token.revoke"],
     "token:{victim_token}"),
    ("basic sign-in", "api", lambda c, a, w: new_id(a.post("/api/v1/tokens", json={"name": "ci"},
                                                           headers=basic(ADMIN, ADMIN_PASSWORD), **AT)),
     ["login.ok", "token.create"], "token:{}"),
    ("basic sign-in failed", "api", lambda c, a, w: a.post("/api/v1/tokens", json={"name": "ci"},
                                                           headers=basic(ADMIN, "wrong-Secret-pw"), **AT),
     ["login.failed"], "user:admin"),
    # --- the pages ------------------------------------------------------------------------------------
    ("workload create", "web", lambda c, a, w: c.post("/workloads/new", data=workload_form(), **AT),
     ["workload.create"], "workload:{}"),
    ("workload update", "web", lambda c, a, w: c.post(f"/workloads/{w['w2']}/edit", data={
        "username": "u3", "password": "edit-Secret-pw", "domain": "", "storage-0-name": "C:\\",
        "storage-0-size": "40", "save": "Save workload"}, **AT), ["workload.update"], "workload:{w2}"),
    ("workload delete", "web", lambda c, a, w: c.post(f"/workloads/{w['w2']}/delete", **AT), ["workload.delete"],
     "workload:{w2}"),
    ("migration create", "web", lambda c, a, w: location_id(c.post("/migrations/new", data={
        "source_id": str(w["w2"]), "selected_mount_points": ["C:\\"], "cloud_type": "aws", "cloud_username": "c",
        "cloud_password": CLOUD_PASSWORD, "save": "Save migration"}, **AT)), ["migration.create"], "migration:{}"),
    ("migration update", "web", lambda c, a, w: c.post(f"/migrations/{w['m1']}/edit", data={
        "selected_mount_points": ["C:\\", "D:\\"], "cloud_type": "aws", "cloud_username": "c", "cloud_password": "",
        "save": "Save migration"}, **AT), ["migration.update"], "migration:{m1}"),
    ("migration run", "web", lambda c, a, w: c.post(f"/migrations/{w['m1']}/run", **AT), ["migration.run"],
     "migration:{m1}"),
    ("migration cancel", "web", lambda c, a, w: c.post(f"/migrations/{w['m2']}/cancel", **AT),
     ["migration.cancel"], "migration:{m2}"),
    ("migration delete", "web", lambda c, a, w: c.post(f"/migrations/{w['m1']}/delete", **AT),
     ["migration.delete"], "migration:{m1}"),
    ("run create", "web", lambda c, a, w: location_id(c.post("/runs/new", data={
        "environment_id": "2", "test_files": [PASSING], "save": "Start run"}, **AT)), ["run.create"], "run:{}"),
    ("run cancel", "web", lambda c, a, w: c.post(f"/runs/{w['run']}/cancel", **AT), ["run.cancel"], "run:{run}"),
    ("run rerun", "web", lambda c, a, w: location_id(c.post(f"/runs/{w['run']}/rerun", **AT)), ["run.rerun"],
     "run:{}"),
    ("test file upload", "web", lambda c, a, w: c.post("/runs/upload", content_type="multipart/form-data", data={
        "file": (io.BytesIO(QUICK), "test_page.py"), "directory": "smoke", "upload": "Upload"}, **AT),
     ["testfile.upload"], "testfile:uploads/smoke/test_page.py"),
    ("environment update", "web", lambda c, a, w: c.post("/environments/3", data={
        "name": "lab", "description": "", "save": "Save"}, **AT), ["environment.update"], "environment:3"),
    ("environment unlock", "web", lambda c, a, w: c.post("/environments/1/unlock", **AT), ["environment.unlock"],
     "environment:1"),
    ("event create", "web", lambda c, a, w: location_id(c.post("/events/new", data={
        "user_id": "x", "description": "d", "save": "Record event"}, **AT)), ["event.create"], "event:{}"),
    ("user create", "web", lambda c, a, w: c.post("/admin/users", data={
        "username": "newbie", "role": "viewer", "password": NEW_PASSWORD, "save": "Create account"}, **AT),
     ["user.create"], "user:newbie"),
    ("user role", "web", lambda c, a, w: c.post("/admin/users/victim", data={
        "display_name": "", "role": "operator", "save": "Save"}, **AT), ["user.role"], "user:victim"),
    ("user disable", "web", lambda c, a, w: c.post("/admin/users/victim", data={
        "display_name": "", "role": "viewer", "disabled": "y", "save": "Save"}, **AT), ["user.disable"],
     "user:victim"),
    ("token create", "web", lambda c, a, w: c.post("/account", data={"tok-name": "laptop", "tok-save": "Create token"},
                                                   **AT), ["token.create"], "token:{}"),
    ("token revoke", "web", lambda c, a, w: c.post(f"/account/tokens/{w['victim_token']}/revoke", **AT),
     ["token.revoke"], "token:{victim_token}"),
    ("password change", "web", lambda c, a, w: c.post("/account", data={
        "pw-current_password": ADMIN_PASSWORD, "pw-new_password": NEW_PASSWORD, "pw-save": "Change password"}, **AT),
     ["user.password"], "user:admin"),
    ("login ok", "web", lambda c, a, w: a.post("/login", data={"username": ADMIN, "password": ADMIN_PASSWORD,
                                                               "save": "1"}, **AT), ["login.ok"], "user:admin"),
    ("login failed", "web", lambda c, a, w: a.post("/login", data={"username": ADMIN, "password": "wrong-Secret-pw",
                                                                   "save": "1"}, **AT), ["login.failed"], "user:admin"),
    ("login failed, unknown user", "web", lambda c, a, w: a.post("/login", data={
        "username": "Nobody", "password": "wrong-Secret-pw", "save": "1"}, **AT), ["login.failed"], "user:nobody"),
    ("logout", "web", lambda c, a, w: c.post("/logout", **AT), ["logout"], "user:admin"),
]
SECRETS = ["s3cret!", "cl0ud!", CLOUD_PASSWORD, NEW_PASSWORD, ADMIN_PASSWORD, PASSWORD, "wrong-Secret-pw",
           "import-Secret-pw", "upd-Secret-pw", "edit-Secret-pw", "form-Secret-pw", "$argon2"]


def case_id(case) -> str:
    return f"{case[1]}: {case[0]}"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_every_state_change_writes_one_entry(app, client, anon_client, world, case):
    name, via, request, actions, target = case
    before = last_id(app)
    started = datetime.now(timezone.utc)
    answer = request(client, anon_client, world)
    if hasattr(answer, "status_code"):
        assert answer.status_code < 400 or actions == ["login.failed"], (answer.status_code, answer.data[:300])
        answer = None
    written = entries(app, before)
    assert [e.action for e in written] == actions, dump(written)
    entry = written[-1]
    if "{}" in target and answer is None:  # a page: the new id is not in the answer
        prefix = target.split("{}")[0]
        assert entry.target.startswith(prefix) and entry.target[len(prefix):], entry.target
    else:
        assert entry.target == target.format(answer, **world)
    actor = ADMIN if "nobody" not in target else "nobody"
    assert entry.actor == actor and entry.via == via and entry.ip == IP, dump([entry])
    assert started - timedelta(seconds=5) <= entry.at <= datetime.now(timezone.utc) + timedelta(seconds=1)
    assert isinstance(entry.details, dict)
    text = dump(written)
    for secret in SECRETS + world["secrets"]:
        assert secret not in text, (secret, text)
    assert not {k for e in written for k in e.details if "password" in k or "token" in k or "secret" in k}


def test_a_created_tokens_secret_is_never_in_the_log(app, client, anon_client):
    api = client.post("/api/v1/tokens", json={"name": "api"}).json["token"]
    basic_token = anon_client.post("/api/v1/tokens", json={"name": "basic"},
                                   headers=basic(ADMIN, ADMIN_PASSWORD)).json["token"]
    page = client.post("/account", data={"tok-name": "page", "tok-save": "Create token"}).get_data(as_text=True)
    page_token = re.search(r'id="new-token">(cut_[^<]+)<', page).group(1)
    text = dump(entries(app)) + client.get("/api/v1/audit?per_page=500").get_data(as_text=True) + \
        client.get("/admin/audit/?per_page=500").get_data(as_text=True)
    assert text.count("token.create") >= 6  # three entries, in the table, the API and the page
    for token in (api, basic_token, page_token, client.token):
        assert token not in text and token[8:] not in text


def test_a_migration_that_fails_to_start_is_audited_as_the_run_it_was(app, client):
    """Running without C:\\ is refused (422), but it is a state change (the migration ends in error)."""
    source = client.post("/api/v1/workloads", json=WORKLOAD).json["id"]
    migration = client.post("/api/v1/migrations", json={"source_id": source, "selected_mount_points": ["D:\\"],
                                                       "target": TARGET}).json["id"]
    before = last_id(app)
    assert client.post(f"/api/v1/migrations/{migration}/run").status_code == 422
    assert [(e.action, e.details.get("refused")) for e in entries(app, before)] == \
           [("migration.run", "system_volume_required")]


# --- the CLI ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, stdin, action, target", [
    (["users", "create", "cli-user", "--role", "operator", "--password-stdin"], NEW_PASSWORD + "\n", "user.create",
     "user:cli-user"),
    (["users", "set-role", "victim", "admin"], None, "user.role", "user:victim"),
    (["users", "disable", "victim"], None, "user.disable", "user:victim"),
    (["users", "set-password", "victim", "--password-stdin"], NEW_PASSWORD + "\n", "user.password", "user:victim"),
    (["users", "token", "victim", "--name", "ci"], None, "token.create", "token:{}"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_the_cli_writes_entries_as_the_system_via_cli(app, args, stdin, action, target):
    make_user(app, "victim", "viewer")
    before = last_id(app)
    result = app.test_cli_runner().invoke(args=args, input=stdin)
    assert result.exit_code == 0, result.output
    written = entries(app, before)
    assert [e.action for e in written] == [action], dump(written)
    [entry] = written
    assert entry.actor == "system" and entry.via == "cli" and entry.ip is None
    if "{}" in target:
        assert entry.target.startswith("token:") and entry.target[6:].isdigit()
        assert result.output.strip() not in dump(written)
    else:
        assert entry.target == target
    assert NEW_PASSWORD not in dump(written)


def test_the_first_admin_is_audited_as_a_bootstrap(app):
    [entry] = [e for e in entries(app) if e.target == f"user:{ADMIN}"]
    assert entry.action == "user.bootstrap" and entry.actor == "system" and entry.via == "cli"
    assert ADMIN_PASSWORD not in dump([entry])


# --- a refused change writes nothing -----------------------------------------------------------------------

REFUSED = [
    ("workload create", lambda c, w: c.post("/api/v1/workloads", json={**WORKLOAD, "ip": "nope"}), 422),
    ("workload duplicate ip", lambda c, w: c.post("/api/v1/workloads", json=WORKLOAD), 409),
    ("workload update", lambda c, w: c.patch(f"/api/v1/workloads/{w['w2']}", json={"ip": "10.9.9.9"}), 422),
    ("workload in use", lambda c, w: c.delete(f"/api/v1/workloads/{w['w1']}"), 409),
    ("migration create", lambda c, w: c.post("/api/v1/migrations", json={"source_id": w["w1"]}), 422),
    ("migration update", lambda c, w: c.patch(f"/api/v1/migrations/{w['m1']}", json={"selected_mount_points": []}),
     422),
    ("running migration edit", lambda c, w: c.patch(f"/api/v1/migrations/{w['m2']}",
                                                    json={"selected_mount_points": ["C:\\", "D:\\"]}), 409),
    ("migration cancel not running", lambda c, w: c.post(f"/api/v1/migrations/{w['m1']}/cancel"), 409),
    ("run create", lambda c, w: c.post("/api/v1/runs", json={"environment_id": 0, "test_files": []}), 422),
    ("run for another account", lambda c, w: c.post("/api/v1/runs", json={
        "username": "victim", "environment_id": 2, "test_files": [PASSING]}), 422),
    ("upload existing", lambda c, w: upload(c), 409),
    ("upload bad name", lambda c, w: upload(c, "notatest.txt"), 422),
    ("environment update", lambda c, w: c.patch("/api/v1/environments/3", json={"name": ""}), 422),
    ("event create", lambda c, w: c.post("/api/v1/events", json={"user_id": "", "description": ""}), 422),
    ("event bad status", lambda c, w: c.patch(f"/api/v1/events/{w['event']}", json={"status": "nope"}), 422),
    ("user create", lambda c, w: c.post("/api/v1/users", json={"username": "Bad Name", "password": "x"}), 422),
    ("user duplicate", lambda c, w: c.post("/api/v1/users", json={"username": "VICTIM", "password": NEW_PASSWORD}),
     409),
    ("user patch", lambda c, w: c.patch("/api/v1/users/victim", json={"role": "root", "disabled": True}), 422),
    ("self demotion", lambda c, w: c.patch(f"/api/v1/users/{ADMIN}", json={"role": "viewer"}), 422),
    ("token create", lambda c, w: c.post("/api/v1/tokens", json={"name": ""}), 422),
    ("token revoke unknown", lambda c, w: c.delete("/api/v1/tokens/99999"), 404),
    ("workload form", lambda c, w: c.post("/workloads/new", data=workload_form(ip="nope")), 422),
    ("account form", lambda c, w: c.post("/admin/users", data={"username": "", "password": "", "save": "1"}), 422),
    ("token form", lambda c, w: c.post("/account", data={"tok-name": "", "tok-save": "1"}), 422),
    ("password form", lambda c, w: c.post("/account", data={"pw-current_password": "wrong-Secret-pw",
                                                             "pw-new_password": NEW_PASSWORD, "pw-save": "1"}), 422),
]


@pytest.mark.parametrize("name, request_, status", REFUSED, ids=[r[0] for r in REFUSED])
def test_a_refused_change_writes_no_entry(app, client, world, name, request_, status):
    before = last_id(app)
    response = request_(client, world)
    assert response.status_code == status, (response.status_code, response.data[:300])
    assert entries(app, before) == [], dump(entries(app, before))


@pytest.mark.parametrize("role, request_", [
    ("viewer", lambda c: c.post("/api/v1/workloads", json=WORKLOAD)),
    ("viewer", lambda c: c.post("/workloads/new", data=workload_form())),
    ("operator", lambda c: c.post("/api/v1/users", json={"username": "newbie", "password": NEW_PASSWORD})),
    ("operator", lambda c: c.patch("/api/v1/environments/1", json={"enabled": False})),
])
def test_a_forbidden_change_writes_no_entry(app, as_role, role, request_):
    user = as_role(role)
    before = last_id(app)
    assert request_(user).status_code == 403
    assert entries(app, before) == []


def test_a_change_and_its_entry_are_committed_together(app, client, world):
    """The duplicate username is found only at commit: its entry, already added, goes with the rollback."""
    from webapp.accounts import services as accounts
    from webapp.domain.errors import Conflict

    before = last_id(app)
    with app.test_request_context("/"):
        with pytest.raises(Conflict):
            accounts.create_user({"username": "victim", "password": NEW_PASSWORD})
    assert entries(app, before) == []
    # and a change whose commit goes through has its entry with it
    with app.test_request_context("/"):
        accounts.create_user({"username": "together", "password": NEW_PASSWORD})
    assert [e.action for e in entries(app, before)] == ["user.create"]


def test_an_entry_is_not_left_behind_by_a_failed_commit(app, client, world):
    """The change and its entry reach the database in one transaction: when that transaction fails after
    both were written (here: a hook raising after the flush), neither stays."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from webapp.models import AuditRow

    def fail_after_flush(session, context):
        if any(isinstance(o, AuditRow) and o.action == "environment.update" for o in session.new):
            raise RuntimeError("the database went away")

    before = last_id(app)
    event.listen(Session, "after_flush", fail_after_flush)
    try:
        response = client.patch("/api/v1/environments/3", json={"description": "lost"})
    finally:
        event.remove(Session, "after_flush", fail_after_flush)
    assert response.status_code == 500
    assert entries(app, before) == []
    assert client.get("/api/v1/environments/3").json["description"] == ""


# --- reading the log ---------------------------------------------------------------------------------------

ENTRY_KEYS = {"id", "at", "actor", "via", "action", "target", "ip", "details"}


@pytest.fixture
def history(app, client, as_role):
    """Some entries by the admin and an operator; then their times are set to known moments."""
    from webapp.extensions import db
    from webapp.models import AuditRow

    operator = as_role("operator", "olly")
    run = client.post("/api/v1/runs", json={"environment_id": 1, "test_files": [PASSING]}).json["id"]
    client.post(f"/api/v1/runs/{run}/cancel")
    operator.post("/api/v1/runs", json={"environment_id": 2, "test_files": [PASSING]})
    operator.post("/api/v1/workloads", json=WORKLOAD)
    client.post("/api/v1/events", json={"user_id": "x", "description": "d"})
    with app.app_context():
        rows = list(db.session.scalars(select(AuditRow).order_by(AuditRow.id)))
        start = datetime(2026, 1, 1, tzinfo=timezone.utc)
        for n, row in enumerate(rows):
            row.at = start + timedelta(days=n)
        db.session.commit()
        return [(r.id, r.at, r.actor, r.action, r.target) for r in rows]


def audit(client, query=""):
    response = client.get("/api/v1/audit" + query)
    assert response.status_code == 200, response.json
    return response.json


def test_the_log_is_newest_first_with_every_field(client, history):
    body = audit(client)
    assert set(body) == {"items", "total", "page", "per_page"} and body["total"] == len(history)
    assert [e["id"] for e in body["items"]] == sorted((h[0] for h in history), reverse=True)
    assert all(set(e) == ENTRY_KEYS for e in body["items"])
    newest = body["items"][0]
    assert newest["action"] == "event.create" and newest["actor"] == ADMIN and newest["via"] == "api"
    assert datetime.fromisoformat(newest["at"]) == history[-1][1]


def test_the_log_is_paginated(client, history):
    first = audit(client, "?per_page=2")
    second = audit(client, "?per_page=2&page=2")
    assert first["per_page"] == 2 and first["total"] == len(history) and len(first["items"]) == 2
    assert second["page"] == 2
    ids = [e["id"] for e in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 4
    beyond = audit(client, "?per_page=2&page=999")
    assert beyond["items"] == [] and beyond["total"] == len(history)
    assert client.get("/api/v1/audit?page=0").status_code == 422


def test_filter_by_actor(client, history):
    items = audit(client, "?actor=olly")["items"]
    assert items and {e["actor"] for e in items} == {"olly"}
    assert [e["action"] for e in items] == ["workload.create", "run.create"]
    assert audit(client, "?actor=nobody")["items"] == []


def test_filter_by_action_or_its_prefix(client, history):
    runs = audit(client, "?action=run")["items"]
    assert sorted(e["action"] for e in runs) == ["run.cancel", "run.create", "run.create"]
    assert [e["action"] for e in audit(client, "?action=run.cancel")["items"]] == ["run.cancel"]
    assert audit(client, "?action=ru")["items"] == []  # a prefix is a whole word, not any few letters
    assert {e["action"] for e in audit(client, "?action=user")["items"]} == {"user.bootstrap", "user.create"}


def test_filter_by_target_exactly(client, history):
    items = audit(client, "?target=run:1")["items"]
    assert [e["action"] for e in items] == ["run.cancel", "run.create"]
    assert all(e["target"] == "run:1" for e in items)
    assert audit(client, "?target=run")["items"] == []


def test_filter_by_time(client, history):
    moments = [h[1] for h in history]
    since = audit(client, f"?since={moments[3].date().isoformat()}")["items"]
    assert sorted(e["id"] for e in since) == [h[0] for h in history[3:]]
    until = audit(client, f"?until={moments[2].isoformat().replace('+00:00', 'Z')}")["items"]
    assert sorted(e["id"] for e in until) == [h[0] for h in history[:3]]
    both = audit(client, f"?since={quote(moments[1].isoformat())}&until={quote(moments[2].isoformat())}"
                         "&action=user")["items"]
    assert both
    assert [e["id"] for e in both] == [h[0] for h in history[1:3] if h[3].startswith("user.")][::-1]
    assert audit(client, "?since=2030-01-01")["items"] == []


@pytest.mark.parametrize("query, field", [("?since=yesterday", "since"), ("?until=2026-13-01", "until"),
                                          ("?since=2026-01-01T25:00", "since")])
def test_a_bad_time_filter_is_422_on_its_field(client, query, field):
    response = client.get("/api/v1/audit" + query)
    assert response.status_code == 422
    assert list(response.json["error"]["fields"]) == [field]


def test_filters_combine(client, history):
    items = audit(client, "?actor=olly&action=run")["items"]
    assert [(e["actor"], e["action"]) for e in items] == [("olly", "run.create")]


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "POST"])
def test_no_endpoint_changes_the_log(app, client, history, method):
    response = client.open("/api/v1/audit", method=method, json={})
    assert response.status_code == 405
    assert response.json["error"]["code"] == "method_not_allowed"
    first = history[0][0]
    assert client.open(f"/api/v1/audit/{first}", method=method, json={}).status_code in (404, 405)
    assert audit(client)["total"] == len(history)


def test_no_route_but_get_reads_the_log(app):
    rules = [r for r in app.url_map.iter_rules() if "audit" in r.rule]
    assert rules
    for rule in rules:
        assert rule.methods - {"GET", "HEAD", "OPTIONS"} == set(), rule


def test_the_audit_page_shows_the_filters_and_the_rows(client, history):
    page = client.get("/admin/audit/")
    assert page.status_code == 200
    body = html.unescape(page.get_data(as_text=True))
    for name in ("actor", "action", "target", "since", "until"):
        assert f'name="{name}"' in body
    assert "run.cancel" in body and "olly" in body and "event.create" in body
    filtered = html.unescape(client.get("/admin/audit/?actor=olly&action=run").get_data(as_text=True))
    assert 'value="olly"' in filtered and "run.create" in filtered and "event.create" not in filtered
    fragment = client.get("/admin/audit/?action=run", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert fragment.lstrip().startswith('<section id="audit-table"') and "<html" not in fragment
    empty = html.unescape(client.get("/admin/audit/?actor=nobody").get_data(as_text=True))
    assert "No entries match these filters." in empty


def test_the_audit_page_paginates_with_its_filters(client, history):
    page = html.unescape(client.get("/admin/audit/?per_page=2&action=run").get_data(as_text=True))
    assert "Page 1 of 2" in page
    assert "action=run" in page.split('rel="next"')[0].rsplit("<a", 1)[-1]


def test_a_bad_filter_on_the_audit_page_is_422(client):
    response = client.get("/admin/audit/?since=yesterday")
    assert response.status_code == 422


def test_the_audit_page_keeps_its_filters_on_the_next_page(client):
    for n in range(55):
        assert client.post("/api/v1/events", json={"user_id": "pager", "description": f"e{n}"}).status_code == 201
    page = client.get("/admin/audit/?action=event&actor=admin").get_data(as_text=True)
    assert "Page 1 of 2" in page
    older = re.search(r'href="([^"]+)" rel="next"', page).group(1).replace("&amp;", "&")
    assert "action=event" in older and "actor=admin" in older and "page=2" in older
    second = client.get(older).get_data(as_text=True)
    assert "Page 2 of 2" in second and second.count("<code>event.create</code>") == 5
