"""Who may use which route. The route lists come from ``app.url_map``, so a new route cannot be forgotten:
every view declares its access level, the API refuses missing, unknown, expired and revoked tokens, a
viewer may change nothing (but its own tokens), an operator nothing that is an admin's, and a refused
request changes nothing at all. Cross-site requests riding on the session cookie change nothing either."""
from __future__ import annotations

import atexit
import hashlib
import io
import re
import shutil
import tempfile
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.fernet import Fernet
from flask import url_for
from sqlalchemy import select

from conftest import world_fixtures, ADMIN, PASSWORD, WORKLOAD, client_as, make_user, token_for
from webapp import create_app
from webapp.auth import needed_role, token_path
from webapp.db import Base, update, utcnow
from webapp.domain.accounts import ANONYMOUS, Role
from webapp.version import VERSION

pytestmark = pytest.mark.one_database  # who may use a route does not depend on the database

PASSING = "sample_tests/test_passing.py"
QUICK = b"def test_quick():\n    assert sum(range(10)) == 45\n"
MUTATING = ("POST", "PUT", "PATCH", "DELETE")
PUBLIC = {"accounts.login", "main.ping", "main.readyz", "api.openapi_json", "api.docs"}


# --- the routes, read from the app's own URL map --------------------------------------------------------

def _routes_app():
    """An app only to read its URL map at collection time (no database or Redis is touched)."""
    data = tempfile.mkdtemp(prefix="cutover-routes-")
    atexit.register(shutil.rmtree, data, True)
    return create_app({"TESTING": True, "DATA_DIR": data, "DATABASE_URL": f"sqlite:///{data}/unused.db",
                       "REDIS_URL": "redis://127.0.0.1:1/0", "SECRET_KEY": "routes",
                       "CREDENTIALS_KEY": Fernet.generate_key().decode(), "SKIP_ADMIN_BOOTSTRAP": True})


ROUTES_APP = _routes_app()
RULES = [r for r in ROUTES_APP.url_map.iter_rules() if r.endpoint != "static"]


def methods(rule) -> list[str]:
    return sorted(rule.methods - {"HEAD", "OPTIONS"})


def view_of(endpoint: str):
    return ROUTES_APP.view_functions[endpoint]


def is_api(rule) -> bool:
    """Authenticated by token, refused as the API refuses: /api/ and /metrics (webapp.auth.token_path)."""
    return token_path(rule.rule)


API_V1 = [(r.endpoint, m) for r in RULES if r.rule.startswith("/api/v1/") for m in methods(r)]
API_MUTATING = [(e, m) for e, m in API_V1 if m in MUTATING]
API_READS = [(e, m) for e, m in API_V1 if m == "GET"]
PAGES = [(r.endpoint, m) for r in RULES if not is_api(r) for m in methods(r)
         if needed_role(view_of(r.endpoint), m) != ANONYMOUS]
PAGE_GETS = [(e, m) for e, m in PAGES if m == "GET"]
# Read by token outside /api/v1 (tests/test_metrics.py checks who may scrape).
TOKEN_READS = {("metrics.metrics", "GET")}
PAGE_POSTS = [(e, m) for e, m in PAGES if m == "POST"]


def level(endpoint: str, method: str):
    return needed_role(view_of(endpoint), method)


def route_id(pair) -> str:
    return f"{pair[1]} {pair[0]}"


# Sample values for a route's variables, by converter: enough to reach the view (or its access check).
SAMPLE_BY_CONVERTER = {"IdConverter": 1, "IntegerConverter": 1, "UnicodeConverter": "x",
                       "PathConverter": "uploads/x/test_x.py"}


def sample_url(endpoint: str, values: dict | None = None) -> str:
    rule = next(r for r in RULES if r.endpoint == endpoint)
    filled = {name: SAMPLE_BY_CONVERTER[type(rule._converters[name]).__name__] for name in rule.arguments}
    filled.update(values or {})
    with ROUTES_APP.test_request_context():
        return url_for(endpoint, **filled)


# --- a small world: real rows behind the sample ids, so that a refused change is a real change ----------

def upload(client, name="test_quick.py", body=QUICK, directory="smoke", **form):
    return client.post("/api/v1/test-files", content_type="multipart/form-data",
                       data={"directory": directory, "file": (io.BytesIO(body), name), **form})


def build_world(app, client) -> dict:
    """workload 1 (source of migrations 1, 3 and 4), workload 2 (unused), workload 3 (source of migration 2),
    migration 1 not started, migration 2 queued (of another source, so that migration 1 passes its preflight),
    run 1 queued on environment 1, one pending event, an upload of operator ``op``, the viewer account
    ``victim``, wave 1 scheduled (migration 3), wave 2 paused (migration 4), environment 4 held. Values are the ids of all this."""
    make_user(app, "op", "operator")
    op = client_as(app, "op")
    assert upload(op).status_code == 201
    w1 = client.post("/api/v1/workloads", json=WORKLOAD).json["id"]
    w2 = client.post("/api/v1/workloads", json={**WORKLOAD, "ip": "10.0.0.11"}).json["id"]
    target = {"cloud_type": "aws", "cloud_credentials": {"username": "cloud", "password": "cl0ud!"}}
    m1 = client.post("/api/v1/migrations", json={"source_id": w1, "selected_mount_points": ["C:\\"], "target": target})
    w3 = client.post("/api/v1/workloads", json={**WORKLOAD, "ip": "10.0.0.12"}).json["id"]
    m2 = client.post("/api/v1/migrations", json={"source_id": w3, "selected_mount_points": ["C:\\"], "target": target})
    assert client.post(f"/api/v1/migrations/{m2.json['id']}/run").status_code == 202
    run = client.post("/api/v1/runs", json={"environment_id": 1, "test_files": [PASSING]})
    assert run.status_code == 201, run.json
    event = client.post("/api/v1/events", json={"user_id": "someone", "description": "hello"})
    assert event.status_code == 201
    make_user(app, "victim", "viewer")
    waves = []
    for paused in (False, True):
        member = client.post("/api/v1/migrations", json={"source_id": w1, "selected_mount_points": ["C:\\"],
                                                         "target": target}).json["id"]
        wave = client.post("/api/v1/waves", json={"name": "later", "migration_ids": [member],
                                                  "start_at": "2999-01-01T00:00:00Z"})
        assert wave.status_code == 201, wave.json
        waves.append(wave.json["id"])
        assert not paused or client.post(f"/api/v1/waves/{wave.json['id']}/pause").status_code == 200
    held = client.post("/api/v1/environments/4/hold", json={"minutes": 60, "reason": "held for the tests"})
    assert held.status_code == 200, held.json
    schedule = client.post("/api/v1/schedules", json={"name": "nightly", "cron": "0 2 * * *", "environment_id": 1,
                                                      "test_files": [PASSING]})
    assert schedule.status_code == 201, schedule.json
    admin_token = client.get("/api/v1/tokens").json["items"][0]["id"]
    nodeid = record_test(app, run.json["id"])
    return {"nodeid": nodeid, "w1": w1, "w2": w2, "m1": m1.json["id"], "m2": m2.json["id"], "run": run.json["id"],
            "event": event.json["id"], "admin_token": admin_token, "upload": "uploads/smoke/test_quick.py",
            "wave": waves[0], "paused_wave": waves[1], "held": 4, "schedule": schedule.json["id"]}


# Building the world takes ~20 requests; hundreds of tests use it. On SQLite it is built once per process
# and each test gets a copy of all of it (database file, DATA_DIR, Redis, the admin's token): a fresh,
# identical world, that the test may change as it likes.

saved, config, client, world = world_fixtures(build_world)  # conftest.world_fixtures


def record_test(app, run_id: int) -> str:
    """A test result of run ``run_id`` and its stats, as a run's end records them: the tests pages' sample."""
    from webapp.extensions import db
    from webapp.models import TestResultRow
    from webapp.testhistory import stats

    nodeid = "uploads/smoke/test_quick.py::test_quick[a b]"
    with app.app_context():
        db.session.add(TestResultRow(run_id=run_id, environment_id=1, nodeid=nodeid, outcome="passed", duration=0.1))
        db.session.flush()
        stats.update(db.session, run_id)
        db.session.commit()
    return nodeid


def snapshot(app) -> dict:
    """Every row of every table (but the columns that merely record a sign-in or a token's use), uploaded
    files' contents included."""
    skip = {"last_used_at", "last_login_at"}
    tables = {}
    with app.app_context():
        from webapp.extensions import db

        session = db.session
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if c.name not in skip]
            tables[table.name] = sorted(repr(tuple(row)) for row in session.execute(select(*columns)))
        session.rollback()
    return {"tables": tables}  # uploads are rows too (content and SHA-256)


def audit_actions(app) -> list[str]:
    from webapp.extensions import db
    from webapp.models import AuditRow

    with app.app_context():
        return list(db.session.scalars(select(AuditRow.action).order_by(AuditRow.id)))


# A request that changes something, for each mutating API route: (URL values, request arguments).
# Each is valid, so an admin's identical request succeeds: a refusal is the role's, not the body's.
API_REQUESTS = {
    ("api.create_workload", "POST"): (lambda w: {}, lambda: {"json": {**WORKLOAD, "ip": "10.0.0.77"}}),
    ("api.update_workload", "PUT"): (lambda w: {"workload_id": w["w2"]},
                                     lambda: {"json": {"credentials": {"username": "u2", "password": "p2"}}}),
    ("api.update_workload", "PATCH"): (lambda w: {"workload_id": w["w2"]},
                                       lambda: {"json": {"credentials": {"username": "u2", "password": "p2"}}}),
    ("api.delete_workload", "DELETE"): (lambda w: {"workload_id": w["w2"]}, dict),
    ("api.import_workloads", "POST"): (lambda w: {}, lambda: {
        "content_type": "text/csv", "data": "ip,username,password,domain,volumes\n10.0.0.78,u,p,,C:\\:40\n"}),
    ("api.create_migration", "POST"): (lambda w: {}, lambda: {"json": {
        "source_id": 2, "selected_mount_points": ["C:\\"],
        "target": {"cloud_type": "aws", "cloud_credentials": {"username": "c", "password": "p"}}}}),
    ("api.update_migration", "PUT"): (lambda w: {"migration_id": w["m1"]},
                                      lambda: {"json": {"selected_mount_points": ["C:\\", "D:\\"]}}),
    ("api.update_migration", "PATCH"): (lambda w: {"migration_id": w["m1"]},
                                        lambda: {"json": {"selected_mount_points": ["C:\\", "D:\\"]}}),
    ("api.delete_migration", "DELETE"): (lambda w: {"migration_id": w["m1"]}, dict),
    ("api.run_migration", "POST"): (lambda w: {"migration_id": w["m1"]}, dict),
    ("api.preflight_migration", "POST"): (lambda w: {"migration_id": w["m1"]}, dict),
    ("api.cancel_migration", "POST"): (lambda w: {"migration_id": w["m2"]}, dict),
    ("api.create_run", "POST"): (lambda w: {}, lambda: {"json": {"environment_id": 2, "test_files": [PASSING]}}),
    ("api.cancel_run", "POST"): (lambda w: {"run_id": w["run"]}, dict),
    ("api.rerun", "POST"): (lambda w: {"run_id": w["run"]}, dict),
    ("api.upload_test_file", "POST"): (lambda w: {}, lambda: {
        "content_type": "multipart/form-data",
        "data": {"directory": "smoke", "overwrite": "true", "file": (io.BytesIO(QUICK + b"# v2\n"), "test_quick.py")}}),
    ("api.delete_test_file", "DELETE"): (lambda w: {"path": w["upload"]}, dict),
    ("api.update_environment", "PATCH"): (lambda w: {"environment_id": 3}, lambda: {"json": {"description": "new"}}),
    ("api.unlock_environment", "POST"): (lambda w: {"environment_id": 1}, dict),
    ("api.hold_environment", "POST"): (lambda w: {"environment_id": 3},
                                       lambda: {"json": {"minutes": 5, "reason": "maintenance"}}),
    ("api.release_environment", "POST"): (lambda w: {"environment_id": w["held"]}, dict),
    ("api.create_event", "POST"): (lambda w: {}, lambda: {"json": {"user_id": "x", "description": "hi"}}),
    ("api.update_event", "PUT"): (lambda w: {"event_id": w["event"]}, lambda: {"json": {"description": "changed"}}),
    ("api.update_event", "PATCH"): (lambda w: {"event_id": w["event"]}, lambda: {"json": {"description": "changed"}}),
    ("api.create_token", "POST"): (lambda w: {}, lambda: {"json": {"name": "more"}}),
    ("api.revoke_token", "DELETE"): (lambda w: {"token_id": w["admin_token"]}, dict),
    ("api.create_user", "POST"): (lambda w: {}, lambda: {"json": {"username": "newbie", "password": PASSWORD}}),
    ("api.update_user", "PATCH"): (lambda w: {"username": "victim"}, lambda: {"json": {"role": "operator"}}),
    ("api.create_wave", "POST"): (lambda w: {}, lambda: {"json": {"name": "new", "migration_ids": [1],
                                                                  "start_at": "2999-01-01T00:00:00Z"}}),
    ("api.pause_wave", "POST"): (lambda w: {"wave_id": w["wave"]}, dict),
    ("api.resume_wave", "POST"): (lambda w: {"wave_id": w["paused_wave"]}, dict),
    ("api.cancel_wave", "POST"): (lambda w: {"wave_id": w["wave"]}, dict),
    ("api.create_schedule", "POST"): (lambda w: {}, lambda: {"json": {
        "name": "api", "cron": "*/5 * * * *", "environment_id": 1, "test_files": [PASSING]}}),
    ("api.update_schedule", "PATCH"): (lambda w: {"schedule_id": w["schedule"]}, lambda: {"json": {"enabled": False}}),
    ("api.delete_schedule", "DELETE"): (lambda w: {"schedule_id": w["schedule"]}, dict),
}

# The viewer's own: it may create and revoke tokens of its own.
VIEWER_MAY = {("api.create_token", "POST"), ("api.revoke_token", "DELETE")}


def api_request(client, pair, world, **extra):
    values, arguments = API_REQUESTS[pair]
    endpoint, method = pair
    return client.open(sample_url(endpoint, values(world)), method=method, **{**arguments(), **extra})


# --- every route declares who may use it -------------------------------------------------------------

def test_the_route_list_is_not_empty():
    assert len(API_V1) > 30 and len(PAGE_GETS) > 20 and len(API_MUTATING) > 15


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.endpoint)
def test_every_view_declares_its_access_level(rule):
    view = view_of(rule.endpoint)
    assert hasattr(view, "access"), f"{rule.endpoint} ({rule.rule}) has no @public/@viewer/@operator/@admin/@access"
    assert view.access == ANONYMOUS or isinstance(view.access, Role)


def test_only_the_known_routes_are_public():
    public = {r.endpoint for r in RULES if view_of(r.endpoint).access == ANONYMOUS}
    assert public == PUBLIC


def test_an_undeclared_view_would_be_admins_only():
    def undeclared():
        pass

    assert needed_role(undeclared, "GET") is Role.ADMIN and needed_role(undeclared, "POST") is Role.ADMIN


def test_every_token_route_outside_the_api_is_listed():
    assert {(r.endpoint, m) for r in RULES if is_api(r) and not r.rule.startswith("/api/") for m in methods(r)} \
        == TOKEN_READS


@pytest.mark.parametrize("pair", sorted(TOKEN_READS), ids=route_id)
def test_a_token_route_outside_the_api_is_401_without_a_token_and_never_takes_the_cookie(app, anon_client, pair):
    assert_unauthorized(anon_client.get(sample_url(pair[0])))
    assert_unauthorized(client_as(app, ADMIN, token=False).get(sample_url(pair[0])))


def test_every_mutating_api_route_has_a_sample_request():
    assert set(API_MUTATING) == set(API_REQUESTS), "add a valid sample request for each new route to API_REQUESTS"


@pytest.mark.parametrize("url", ["/login", "/ping", "/api/openapi.json", "/api/docs"])
def test_public_routes_answer_without_credentials(anon_client, url):
    response = anon_client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    if url == "/ping":
        assert response.json["status"] == "ok" and response.json["version"] == VERSION
    if url == "/api/openapi.json":
        assert response.json["openapi"].startswith("3.")
    # an open route is open to all: a bad or stale token sent along is no reason to refuse it
    assert anon_client.get(url, headers={"Authorization": "Bearer cut_" + "x" * 43}).status_code == 200


# --- the API without a valid token ----------------------------------------------------------------------

def assert_error(response, status: int, code: str):
    assert response.status_code == status, (response.status_code, response.data[:300])
    assert response.is_json, response.data[:300]
    body = response.json
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}, body
    assert body["error"]["code"] == code and isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["fields"], dict)
    return body["error"]


def assert_unauthorized(response):
    error = assert_error(response, 401, "unauthorized")
    assert error["fields"] == {}
    assert response.headers.get("WWW-Authenticate", "").startswith("Bearer"), response.headers


def body_for(method: str) -> dict:
    return {"json": {}} if method in ("POST", "PUT", "PATCH") else {}


@pytest.mark.parametrize("pair", API_V1, ids=route_id)
def test_the_api_without_a_token_is_401(anon_client, pair):
    endpoint, method = pair
    assert_unauthorized(anon_client.open(sample_url(endpoint), method=method, **body_for(method)))


def expire(app, token_id: int) -> None:
    from webapp.extensions import db
    from webapp.models import TokenRow

    with app.app_context():
        db.session.execute(update(TokenRow).where(TokenRow.id == token_id)
                           .values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()


def newest_token_id(app) -> int:
    from webapp.extensions import db
    from webapp.models import TokenRow

    with app.app_context():
        return db.session.scalar(select(TokenRow.id).order_by(TokenRow.id.desc()).limit(1))


@pytest.fixture
def bad_tokens(app, client):
    """An unknown, an expired and a revoked token of the admin, and some that are not even tokens."""
    expired = token_for(app, ADMIN, name="expired")
    expire(app, newest_token_id(app))
    revoked = token_for(app, ADMIN, name="revoked")
    revoked_id = newest_token_id(app)
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {revoked}"}).status_code == 200
    assert client.delete(f"/api/v1/tokens/{revoked_id}").status_code == 204
    return {"unknown": "cut_" + "A" * 43, "expired": expired, "revoked": revoked, "garbage": "not-a-token",
            "truncated": client.token[:-1]}


@pytest.mark.parametrize("pair", API_V1, ids=route_id)
def test_the_api_with_an_unknown_expired_or_revoked_token_is_401(app, anon_client, bad_tokens, pair):
    endpoint, method = pair
    before = audit_actions(app)
    for kind, token in bad_tokens.items():
        response = anon_client.open(sample_url(endpoint), method=method, headers={"Authorization": f"Bearer {token}"},
                                    **body_for(method))
        assert_unauthorized(response)
    assert audit_actions(app) == before


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Token cut_abc", "bearer", "Basic !!!", "cut_x"])
def test_a_malformed_authorization_header_is_401(anon_client, header):
    assert_unauthorized(anon_client.get("/api/v1/workloads", headers={"Authorization": header}))


def test_the_scheme_name_is_not_case_sensitive(client):
    response = client.get("/api/v1/me", headers={"Authorization": f"bearer {client.token}"})
    assert response.status_code == 200 and response.json["username"] == ADMIN


def test_basic_credentials_are_taken_only_where_declared(app, anon_client):
    import base64

    basic = "Basic " + base64.b64encode(f"{ADMIN}:admin-pass-123".encode()).decode()
    assert_unauthorized(anon_client.get("/api/v1/workloads", headers={"Authorization": basic}))
    assert_unauthorized(anon_client.post("/api/v1/workloads", json=WORKLOAD, headers={"Authorization": basic}))
    created = anon_client.post("/api/v1/tokens", json={"name": "ci"}, headers={"Authorization": basic})
    assert created.status_code == 201, created.json


def test_the_api_never_authenticates_by_the_session_cookie(app):
    signed_in = client_as(app, ADMIN, token=False)
    assert signed_in.get("/").status_code == 200  # the session works for the pages
    assert_unauthorized(signed_in.get("/api/v1/workloads"))
    assert_unauthorized(signed_in.get("/api/v1/me"))
    assert_unauthorized(signed_in.post("/api/v1/workloads", json=WORKLOAD))
    assert signed_in.get("/workloads/").status_code == 200


# --- a viewer changes nothing through the API (but its own tokens) -----------------------------------------

@pytest.mark.parametrize("pair", sorted(set(API_MUTATING) - VIEWER_MAY), ids=route_id)
def test_a_viewer_token_may_change_nothing(app, client, as_role, world, pair):
    viewer = as_role("viewer")
    assert viewer.get("/api/v1/me").status_code == 200  # the token's first use is recorded before the snapshot
    before = snapshot(app)
    error = assert_error(api_request(viewer, pair, world), 403, "forbidden")
    assert "viewer" in error["message"]
    assert snapshot(app) == before
    # the very same request from an admin goes through: the refusal was the viewer's role, nothing else
    allowed = api_request(client, pair, world)
    assert allowed.status_code < 300, (allowed.status_code, allowed.data[:300])


def test_a_viewer_manages_its_own_tokens(app, as_role):
    viewer = as_role("viewer")
    created = viewer.post("/api/v1/tokens", json={"name": "script"})
    assert created.status_code == 201 and created.json["role"] == "viewer" and created.json["user"] == "viewer-user"
    assert viewer.delete(f"/api/v1/tokens/{created.json['id']}").status_code == 204
    assert [t["name"] for t in viewer.get("/api/v1/tokens").json["items"]] == ["tests"]


@pytest.mark.parametrize("pair", API_READS, ids=route_id)
def test_a_viewer_may_read_every_get_endpoint_but_the_admins(app, as_role, world, pair):
    endpoint, _ = pair
    viewer = as_role("viewer")
    values = {"workload_id": world["w1"], "migration_id": world["m1"], "run_id": world["run"],
              "event_id": world["event"], "environment_id": 1, "username": "victim", "wave_id": world["wave"],
              "schedule_id": world["schedule"], "nodeid": world["nodeid"]}
    rule = next(r for r in RULES if r.endpoint == endpoint)
    response = viewer.get(sample_url(endpoint, {k: v for k, v in values.items() if k in rule.arguments}))
    if level(endpoint, "GET") is Role.ADMIN:
        assert_error(response, 403, "forbidden")
    else:
        assert level(endpoint, "GET") is Role.VIEWER
        # a run that has not finished has no JUnit report yet: that is not a refusal
        assert response.status_code in (200, 404 if endpoint == "api.run_junit" else 200), (
            response.status_code, response.data[:300])


# --- an operator does nothing that is an admin's ------------------------------------------------------------

ADMIN_API = sorted((e, m) for e, m in API_V1 if level(e, m) is Role.ADMIN)


def test_the_admin_only_api_routes_are_the_expected_ones():
    assert set(ADMIN_API) == {
        ("api.update_environment", "PATCH"), ("api.unlock_environment", "POST"),
        ("api.list_users", "GET"), ("api.create_user", "POST"), ("api.get_user", "GET"),
        ("api.update_user", "PATCH"), ("api.list_audit", "GET")}


@pytest.mark.parametrize("pair", ADMIN_API, ids=route_id)
def test_an_operator_is_refused_the_admin_api(app, client, as_role, world, pair):
    operator = as_role("operator")
    operator.get("/api/v1/me")
    before = snapshot(app)
    if pair in API_REQUESTS:
        response = api_request(operator, pair, world)
    else:
        response = operator.open(sample_url(pair[0], {"username": "victim"} if pair[0] == "api.get_user" else {}),
                                 method=pair[1])
    error = assert_error(response, 403, "forbidden")
    assert "admin" in error["message"] and "operator" in error["message"]
    assert snapshot(app) == before


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_only_an_admin_lists_another_accounts_tokens(client, as_role, role):
    other = as_role(role)
    assert_error(other.get(f"/api/v1/tokens?user={ADMIN}"), 403, "forbidden")
    assert_error(other.get("/api/v1/tokens?user=*"), 403, "forbidden")
    assert other.get(f"/api/v1/tokens?user={other.username}").status_code == 200  # its own, by name
    listed = client.get(f"/api/v1/tokens?user={other.username}")
    assert listed.status_code == 200 and [t["user"] for t in listed.json["items"]] == [other.username]


def test_only_an_admin_changes_an_events_status(app, client, as_role, world):
    operator = as_role("operator")
    url = f"/api/v1/events/{world['event']}"
    before = snapshot(app)
    assert_error(operator.patch(url, json={"status": "processed"}), 403, "forbidden")
    assert_error(operator.put(url, json={"status": "failed"}), 403, "forbidden")
    assert snapshot(app) == before
    assert client.get(url).json["status"] == "pending"
    assert operator.patch(url, json={"description": "an operator may edit a pending event"}).status_code == 200
    changed = client.patch(url, json={"status": "processed"})
    assert changed.status_code == 200 and changed.json["status"] == "processed"


def test_an_operator_cannot_replace_or_delete_another_operators_upload(app, client, as_role, world):
    other = as_role("operator", "op2")
    before = snapshot(app)
    error = assert_error(upload(other, body=QUICK + b"# mine now\n", overwrite="true"), 403, "forbidden")
    assert "op" in error["message"]
    assert_error(other.delete(f"/api/v1/test-files/{world['upload']}"), 403, "forbidden")
    assert snapshot(app) == before
    # the page's upload form is held to the same rule
    page = other.post("/runs/upload", content_type="multipart/form-data",
                      data={"file": (io.BytesIO(QUICK + b"# page\n"), "test_quick.py"), "directory": "smoke",
                            "overwrite": "y", "upload": "Upload"})
    assert page.status_code == 403
    assert snapshot(app) == before
    # its own upload it may replace and delete
    assert upload(other, "test_mine.py").status_code == 201
    assert upload(other, "test_mine.py", body=QUICK + b"# v2\n", overwrite="true").status_code == 201
    assert other.delete("/api/v1/test-files/uploads/smoke/test_mine.py").status_code == 204


def test_the_admin_may_replace_and_delete_anyones_upload(app, client, world):
    replaced = upload(client, body=QUICK + b"# by the admin\n", overwrite="true")
    assert replaced.status_code == 201, replaced.json
    assert replaced.json["owner"] == "op"  # the file stays its uploader's
    assert client.delete(f"/api/v1/test-files/{world['upload']}").status_code == 204
    assert world["upload"] not in [e["path"] for e in client.get("/api/v1/test-files").json]


def test_an_upload_nobody_owns_only_an_admin_may_replace(app, client, as_role):
    with app.app_context():  # as revision 0006 imports a file from before accounts
        from webapp.extensions import db
        from webapp.models import UploadRow

        db.session.add(UploadRow(path="uploads/by-hand/test_dropped.py", owner=None, content=QUICK, size=len(QUICK),
                                 sha256=hashlib.sha256(QUICK).hexdigest()))
        db.session.commit()
    operator = as_role("operator")
    assert_error(upload(operator, "test_dropped.py", directory="by-hand", overwrite="true"), 403, "forbidden")
    assert_error(operator.delete("/api/v1/test-files/uploads/by-hand/test_dropped.py"), 403, "forbidden")
    assert client.delete("/api/v1/test-files/uploads/by-hand/test_dropped.py").status_code == 204


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_only_an_admin_opens_another_accounts_inbox(client, as_role, role):
    other = as_role(role)
    assert other.get("/inbox").status_code == 200
    assert other.get(f"/inbox?user_id={other.username}").status_code == 200
    assert other.get(f"/inbox?user_id={ADMIN}").status_code == 403
    assert other.get("/inbox?user_id=someone-else").status_code == 403
    assert client.get(f"/inbox?user_id={other.username}").status_code == 200


# --- the pages ------------------------------------------------------------------------------------------

def page_values(world) -> dict:
    return {"workload_id": world["w2"], "migration_id": world["m1"], "run_id": world["run"],
            "event_id": world["event"], "environment_id": 1, "username": "victim", "token_id": world["admin_token"],
            "wave_id": world["wave"], "schedule_id": world["schedule"], "nodeid": world["nodeid"]}


def page_url(endpoint: str, world: dict | None = None) -> str:
    rule = next(r for r in RULES if r.endpoint == endpoint)
    values = page_values(world) if world else {}
    return sample_url(endpoint, {k: v for k, v in values.items() if k in rule.arguments})


def login_next(response) -> str:
    location = urlsplit(response.headers["Location"])
    assert location.path == "/login", response.headers["Location"]
    return parse_qs(location.query)["next"][0]


@pytest.mark.parametrize("pair", PAGE_GETS, ids=route_id)
def test_an_anonymous_page_view_is_sent_to_sign_in_and_back(anon_client, pair):
    url = page_url(pair[0])
    response = anon_client.get(url)
    assert response.status_code == 302
    assert login_next(response) == url
    with_query = anon_client.get(url + "?page=2&x=%2F")
    assert login_next(with_query) == url + "?page=2&x=%2F"  # the query comes back too
    htmx = anon_client.get(url, headers={"HX-Request": "true"})
    assert htmx.status_code in (200, 204) and "HX-Redirect" in htmx.headers, htmx.headers
    assert urlsplit(htmx.headers["HX-Redirect"]).path == "/login"
    assert parse_qs(urlsplit(htmx.headers["HX-Redirect"]).query)["next"] == [url]


@pytest.mark.parametrize("pair", PAGE_POSTS, ids=route_id)
def test_an_anonymous_page_post_is_sent_to_sign_in_and_changes_nothing(app, anon_client, pair):
    before = snapshot(app)
    response = anon_client.post(page_url(pair[0]), data={"save": "1"})
    assert response.status_code == 303 and urlsplit(response.headers["Location"]).path == "/login"
    htmx = anon_client.post(page_url(pair[0]), headers={"HX-Request": "true"})
    assert "HX-Redirect" in htmx.headers
    assert snapshot(app) == before


@pytest.mark.parametrize("pair", PAGE_GETS, ids=route_id)
def test_a_viewer_reads_every_page_but_the_forms_and_the_admins(app, as_role, world, pair):
    endpoint, _ = pair
    viewer = as_role("viewer")
    response = viewer.get(page_url(endpoint, world))
    if level(endpoint, "GET") is Role.VIEWER:
        assert response.status_code in (200, 404 if endpoint == "runs.junit" else 200), response.status_code
    else:
        assert response.status_code == 403, (endpoint, response.status_code)


# A valid form for each page that changes something (POST): the same from an admin goes through.
PAGE_FORMS = {
    "accounts.account": {"tok-name": "page", "tok-save": "Create token"},
    "accounts.logout": {},
    "accounts.revoke_token": {},
    "accounts.users": {"username": "newbie", "role": "viewer", "password": PASSWORD, "save": "Create account"},
    "accounts.edit_user": {"display_name": "V", "role": "operator", "save": "Save"},
    "environments.detail": {"name": "env-1", "description": "edited", "enabled": "y", "save": "Save"},
    "environments.unlock": {},
    "environments.hold": {"minutes": "5", "reason": "maintenance", "hold": "Hold"},
    "environments.release": {"release": "Release"},
    "environments.set_secret": {"name": "API_TOKEN", "value": "s3cret-value", "save_secret": "Save secret"},
    "environments.delete_secret": {"name": "API_TOKEN", "delete_secret": "Delete"},
    "events.create": {"user_id": "someone", "description": "hi", "save": "Record event"},
    "migrations.create": {"source_id": "2", "selected_mount_points": ["C:\\"], "cloud_type": "aws",
                          "cloud_username": "c", "cloud_password": "p", "save": "Save migration"},
    "migrations.edit": {"selected_mount_points": ["C:\\", "D:\\"], "cloud_type": "aws", "cloud_username": "c",
                        "cloud_password": "", "save": "Save migration"},
    "migrations.delete": {},
    "migrations.run": {},
    "migrations.cancel": {},
    "runs.create": {"environment_id": "2", "test_files": [PASSING], "save": "Start run"},
    "runs.upload": None,  # multipart: see page_post()
    "runs.cancel": {},
    "runs.rerun": {},
    "workloads.create": {"ip": "10.0.0.99", "username": "u", "password": "p", "domain": "",
                         "storage-0-name": "C:\\", "storage-0-size": "40", "save": "Save workload"},
    "workloads.edit": {"username": "u3", "password": "", "domain": "", "storage-0-name": "C:\\",
                       "storage-0-size": "40", "save": "Save workload"},
    "workloads.delete": {},
    "workloads.import_file": None,  # multipart, then its confirm: see page_post()
    "waves.create": {"name": "page", "migration_ids": ["1"], "max_parallel": "1", "start_at": "2999-01-01T00:00",
                     "save": "Create wave"},
    "waves.pause": {},
    "waves.resume": {},
    "waves.cancel": {},
    "schedules.create": {"name": "page", "cron": "0 2 * * *", "environment_id": "1", "test_files": PASSING,
                         "priority": "normal", "enabled": "y", "save": "Save schedule"},
    "schedules.update": {"name": "page", "cron": "0 3 * * *", "environment_id": "1", "test_files": PASSING,
                         "priority": "high", "enabled": "y", "save": "Save schedule"},
    "schedules.delete": {},
}
VIEWER_PAGES = {"accounts.account", "accounts.logout", "accounts.revoke_token"}


def page_post(client, endpoint, world, **extra):
    url = page_url(endpoint, world)
    if endpoint == "migrations.cancel":
        url = url.replace(f"/{world['m1']}/", f"/{world['m2']}/")
    if endpoint == "environments.release":
        url = url.replace("/environments/1/", f"/environments/{world['held']}/")
    if endpoint == "waves.resume":
        url = url.replace(f"/{world['wave']}/", f"/{world['paused_wave']}/")
    if endpoint == "runs.upload":
        return client.post(url, content_type="multipart/form-data", data={
            "file": (io.BytesIO(QUICK + b"# page\n"), "test_page.py"), "directory": "smoke", "upload": "Upload"}, **extra)
    if endpoint == "workloads.import_file":  # preview the file, then confirm what the preview sealed
        preview = client.post(url, content_type="multipart/form-data", data={"preview": "Preview", "file": (
            io.BytesIO(b"ip,username,password,domain,volumes\n10.0.0.79,u,p,,C:\\:40\n"), "w.csv")}, **extra)
        sealed = re.search(r'name="content" type="hidden" value="([^"]+)"', preview.get_data(as_text=True))
        if preview.status_code != 200 or sealed is None:
            return preview
        return client.post(url, data={"content": sealed.group(1), "confirm": "Import"}, **extra)
    return client.post(url, data=PAGE_FORMS[endpoint], **extra)


def test_every_page_post_has_a_sample_form():
    assert {e for e, _ in PAGE_POSTS} == set(PAGE_FORMS)
    assert {e for e, _ in PAGE_POSTS if level(e, "POST") is Role.VIEWER} == VIEWER_PAGES


@pytest.mark.parametrize("pair", [p for p in PAGE_POSTS if p[0] not in VIEWER_PAGES], ids=route_id)
def test_a_viewer_posting_to_an_operator_or_admin_page_is_403_and_changes_nothing(app, client, as_role, world, pair):
    endpoint, _ = pair
    viewer = as_role("viewer")
    viewer.get("/api/v1/me")
    before = snapshot(app)
    assert page_post(viewer, endpoint, world).status_code == 403
    assert page_post(viewer, endpoint, world, headers={"HX-Request": "true"}).status_code == 403
    assert snapshot(app) == before
    allowed = page_post(client, endpoint, world)
    assert allowed.status_code == (201 if endpoint == "accounts.account" else 303), (endpoint, allowed.status_code)


ADMIN_PAGES = sorted((e, m) for e, m in PAGES if level(e, m) is Role.ADMIN)


def test_the_admin_only_pages_are_the_expected_ones():
    assert set(ADMIN_PAGES) == {
        ("environments.detail", "POST"), ("environments.unlock", "POST"), ("environments.set_secret", "POST"),
        ("environments.delete_secret", "POST"), ("accounts.users", "GET"),
        ("accounts.users", "POST"), ("accounts.edit_user", "GET"), ("accounts.edit_user", "POST"),
        ("audit.index", "GET")}


@pytest.mark.parametrize("pair", ADMIN_PAGES, ids=route_id)
def test_an_operator_is_refused_the_admin_pages(app, client, as_role, world, pair):
    endpoint, method = pair
    operator = as_role("operator")
    operator.get("/api/v1/me")
    before = snapshot(app)
    if method == "GET":
        assert operator.get(page_url(endpoint, world)).status_code == 403
        assert client.get(page_url(endpoint, world)).status_code == 200
    else:
        assert page_post(operator, endpoint, world).status_code == 403
        assert snapshot(app) == before
        assert page_post(client, endpoint, world).status_code == 303


def test_the_environment_page_is_read_by_all_but_saved_by_admins(as_role):
    operator = as_role("operator")
    page = operator.get("/environments/1")
    assert page.status_code == 200
    assert operator.post("/environments/1", data=PAGE_FORMS["environments.detail"]).status_code == 403


def test_a_viewer_revokes_only_its_own_tokens_from_the_account_page(app, client, as_role, world):
    viewer = as_role("viewer")
    response = viewer.post(f"/account/tokens/{world['admin_token']}/revoke")
    assert response.status_code == 404
    assert client.get("/api/v1/me").status_code == 200  # the admin's token still works


# --- cross-site requests riding on the session cookie change nothing ------------------------------------------

@pytest.fixture
def csrf_app(config):
    app = create_app({**config, "WTF_CSRF_ENABLED": True})
    yield app
    app.extensions["db"].kw["bind"].dispose()


def test_cross_site_requests_with_only_the_session_cookie_change_nothing(csrf_app):
    admin = client_as(csrf_app, ADMIN)  # session + token: to set up and to look
    assert upload(admin).status_code == 201
    cookie_only = client_as(csrf_app, ADMIN, token=False)
    assert cookie_only.get("/").status_code == 200
    before = snapshot(csrf_app)

    run = cookie_only.post("/api/v1/runs", content_type="text/plain",
                           data='{"environment_id": 1, "test_files": ["sample_tests/test_passing.py"]}')
    assert run.status_code in (401, 403, 415), run.status_code
    form = cookie_only.post("/api/v1/workloads", data={"ip": "10.0.0.1", "credentials": "x"})
    assert form.status_code in (401, 403, 415), form.status_code
    overwrite = cookie_only.post("/api/v1/test-files", content_type="multipart/form-data",
                                 data={"directory": "smoke", "overwrite": "true",
                                       "file": (io.BytesIO(b"def test_evil():\n    pass\n"), "test_quick.py")})
    assert overwrite.status_code in (401, 403), overwrite.status_code
    page = cookie_only.post("/workloads/new", data={"ip": "10.0.0.1", "username": "a", "password": "b",
                                                    "storage-0-name": "C:", "storage-0-size": "1", "save": "1"})
    assert page.status_code == 400 and "CSRF" in page.get_data(as_text=True)
    assert snapshot(csrf_app) == before
    assert admin.get("/api/v1/runs").json["total"] == 0 and admin.get("/api/v1/workloads").json["total"] == 0


@pytest.mark.parametrize("url, content_type, body", [
    ("/api/v1/runs", "text/plain", '{"environment_id": 1, "test_files": ["sample_tests/test_passing.py"]}'),
    ("/api/v1/runs", "application/x-www-form-urlencoded", "environment_id=1"),
    ("/api/v1/runs", "multipart/form-data; boundary=x", "--x--"),
    ("/api/v1/workloads", "text/plain", '{"ip": "10.0.0.1"}'),
    ("/api/v1/events", "text/plain", '{"user_id": "a", "description": "b"}'),
    ("/api/v1/tokens", "text/plain", '{"name": "x"}'),
    ("/api/v1/test-files", "application/json", '{"directory": "smoke"}'),
    ("/api/v1/test-files", "text/plain", "x"),
])
def test_a_token_with_a_body_of_the_wrong_type_is_415(app, client, url, content_type, body):
    before = snapshot(app)
    error = assert_error(client.post(url, data=body, content_type=content_type), 415, "unsupported_media_type")
    assert error["fields"]
    assert snapshot(app) == before


def test_a_cross_site_text_plain_post_with_a_token_would_still_be_refused(app, client):
    response = client.post("/api/v1/runs", data=b'{"environment_id": 1, "test_files": ["%s"]}' % PASSING.encode(),
                           headers={"Content-Type": "text/plain;charset=UTF-8"})
    assert_error(response, 415, "unsupported_media_type")
    assert client.get("/api/v1/runs").json["total"] == 0


# --- the copy of the world each test gets is the world -----------------------------------------------------

def world_shape(app, values: dict) -> dict:
    """What a world is, but for what each build draws afresh (times, salts, tokens, sealed passwords, job ids)."""
    from sqlalchemy import DateTime

    from webapp.extensions import db

    drawn = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{12,}"  # ids, hashes
                       r"|\$argon2id\$[^']+|gAAAAA[\w-]+=*|'cut_[\w-]{4}'"  # salted, sealed, tokens
                       r"|\d{4}-\d\d-\d\dT[\d:.]+\+00:00")  # times
    tables = {}
    with app.app_context():
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if not isinstance(getattr(c.type, "impl", c.type), DateTime)]
            tables[table.name] = sorted(drawn.sub("*", repr(tuple(row))) for row in db.session.execute(select(*columns)))
        db.session.rollback()
    connection = app.extensions["redis"]
    keys = sorted((drawn.sub("*", key.decode()), connection.type(key).decode()) for key in connection.keys("*"))
    return {"tables": tables, "redis": keys, "values": {k: v for k, v in values.items() if k != "event"}}


def test_the_world_each_test_gets_is_the_world_built_afresh(app, world, saved, redis_server, sqlite_template,
                                                              tmp_path):
    """The copy holds every row and every Redis key that building the world for this test alone would make."""
    from conftest import test_config

    assert saved is not None  # the module runs on SQLite only, where the world is copied
    copied = world_shape(app, world)
    app.extensions["redis"].flushall()
    shutil.copyfile(sqlite_template, tmp_path / "fresh.db")
    fresh = create_app(test_config(tmp_path / "fresh", redis_server.url, f"sqlite:///{tmp_path / 'fresh.db'}"))
    try:
        built = build_world(fresh, client_as(fresh, ADMIN))
        assert world_shape(fresh, built) == copied
    finally:
        fresh.extensions["db"].kw["bind"].dispose()
