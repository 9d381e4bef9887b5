"""The OpenAPI document: it covers every API route, is valid OpenAPI 3.1, renders as /api/docs,
and is true to the app — schemathesis calls every operation in-process and checks each answer."""
from __future__ import annotations

import base64
import io
from collections import Counter
import re
import time

import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import ADMIN, PASSWORD, make_migration, make_user, make_workload, token_for

METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


def app_operations(app) -> set[tuple[str, str]]:
    """(path in OpenAPI syntax, METHOD) of every API rule, /ping, /readyz and /metrics."""
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/") or rule.rule in ("/ping", "/readyz", "/metrics"):
            path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
            found |= {(path, method) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return found


def documented_operations(doc: dict) -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, item in doc["paths"].items() for method in item
            if method.upper() in METHODS}


def test_every_api_route_is_documented_and_every_documented_operation_exists(app, client):
    doc = client.get("/api/openapi.json").json
    in_app, in_doc = app_operations(app), documented_operations(doc)
    assert ("/api/v1/workloads/{workload_id}", "PATCH") in in_app  # the rule conversion works
    assert in_app - in_doc == set(), "routes missing from the OpenAPI document"
    assert in_doc - in_app == set(), "documented operations the app does not have"


def test_the_document_declares_each_operation_s_role_and_its_auth_answers_as_the_app_enforces_them(app, client):
    """x-role is the view's declared access level; 401 wherever a token is needed (with WWW-Authenticate),
    403 where a viewer is not enough, 415 wherever a body may be sent, 429 where passwords are taken."""
    from webapp.auth import needed_role

    doc = client.get("/api/openapi.json").json
    schemes = doc["components"]["securitySchemes"]
    assert doc["security"] == [{"bearerAuth": []}]  # applied to every operation that does not say otherwise
    assert [(s["type"], s["scheme"]) for s in (schemes["bearerAuth"], schemes["basicAuth"])] == [
        ("http", "bearer"), ("http", "basic")]
    for rule in app.url_map.iter_rules():
        if not (rule.rule.startswith("/api/") or rule.rule in ("/ping", "/readyz", "/metrics")):
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        view = app.view_functions[rule.endpoint]
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            op = doc["paths"][path][method.lower()]
            role = getattr(needed_role(view, method), "value", needed_role(view, method))
            assert op["x-role"] == role, (method, path)
            statuses = set(op["responses"])
            if role == "anonymous":
                assert op["security"] == [], (method, path)
                continue
            assert "401" in statuses and op["responses"]["401"]["headers"]["WWW-Authenticate"]["required"], (method, path)
            if role != "viewer":
                assert "403" in statuses, (method, path)
            assert ("415" in statuses) == (method in ("POST", "PUT", "PATCH")), (method, path)
            if getattr(view, "basic_auth", False):
                assert {"bearerAuth": []} in op["security"] and {"basicAuth": []} in op["security"]
                assert op["responses"]["429"]["headers"]["Retry-After"]["required"] is True
            else:
                assert "security" not in op and "429" not in statuses, (method, path)
            if "requestBody" in op:
                accepts = [view.accepts] if isinstance(view.accepts, str) else list(view.accepts)
                assert sorted(op["requestBody"]["content"]) == sorted(accepts), (method, path)


def _refs(node):
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_the_document_is_valid_openapi_3_1(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    doc = response.json
    assert doc["openapi"].startswith("3.1.")
    schemathesis.openapi.from_dict(doc).validate()  # the OpenAPI 3.1 meta-schema (raises if invalid)
    schemas = doc["components"]["schemas"]
    for name, schema in schemas.items():
        jsonschema_rs.meta.validate(schema)  # each one is a valid JSON Schema 2020-12
    assert {"Workload", "WorkloadInput", "Migration", "MigrationInput", "MigrationStatus", "Run", "RunInput",
            "LogSlice", "TestFile", "Environment", "EnvironmentPatch", "Event", "EventInput", "EventPatch",
            "WorkloadPage", "MigrationPage", "RunPage", "EventPage", "EnvironmentList", "Error", "User", "Me",
            "UserList", "UserInput", "UserPatch", "Token", "NewToken", "TokenList", "TokenInput", "AuditEntry",
            "AuditPage"} <= set(schemas)
    for target in _refs(doc):  # every reference resolves
        node = doc
        for part in target.removeprefix("#/").split("/"):
            node = node[part]
    operation_ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(operation_ids) == len(set(operation_ids))
    for path, item in doc["paths"].items():
        for method, op in item.items():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"{(\w+)}", path)), (method, path)
            for status, answer in op["responses"].items():
                if status == "201":
                    assert answer["headers"]["Location"]["required"] is True, (method, path)
                if status.startswith("4"):
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema["allOf"][0] == {"$ref": "#/components/schemas/Error"}, (method, path, status)


def test_the_docs_page_lists_every_operation_and_schema(client):
    response = client.get("/api/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    doc = client.get("/api/openapi.json").json
    for path, item in doc["paths"].items():
        for method, op in item.items():
            section = re.search(rf'<section class="endpoint" id="{op["operationId"]}">(.*?)</section>', page, re.S)
            assert section, (method, path)
            assert f">{method.upper()}</span> <code>{path}</code>" in section.group(1)
            access = "Open: no token needed." if op["x-role"] == "anonymous" else f"{op['x-role'].capitalize()} role"
            assert f"<strong>Access:</strong> {access}" in section.group(1), (method, path)
            for status in op["responses"]:
                assert f"<strong>{status}</strong>" in section.group(1), (method, path, status)
            for parameter in op.get("parameters", []):
                assert f"<code>{parameter['name']}</code>" in section.group(1), (method, path, parameter["name"])
    for name in doc["components"]["schemas"]:
        assert f'id="schema-{name}"' in page
    for name in doc["components"]["securitySchemes"]:
        assert f'id="security-{name}"' in page
    assert "<script" not in page.split("</head>", 1)[1]  # nothing but htmx in the head
    assert client.get("/static/docs.css").status_code == 200


# --- schemathesis: every operation, generated input, every answer checked against the document -------

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
GENERATED, SEEDED = 25, 10  # examples per operation: freely generated; with path parameters of real resources
NEGATIVE = 10  # examples per operation of invalid input (must be refused with a documented 4xx, never a 5xx)
QUICK_TEST = b"def test_ok():\n    assert True\n"


def seed(client, n: int) -> dict:
    """Fresh resources of every kind, for the operations' path parameters."""
    workload = make_workload(client, ip=f"10.77.{n // 200}.{n % 200 + 1}")
    migration = make_migration(client, workload["id"])
    environment_id = n % 100 + 1
    assert client.patch(f"/api/v1/environments/{environment_id}", json={"enabled": True}).status_code == 200
    run = client.post("/api/v1/runs", json={"environment_id": environment_id,
                                            "test_files": ["sample_tests/test_passing.py"]})
    event = client.post("/api/v1/events", json={"user_id": "seed", "description": f"seeded {n}"})
    upload = client.post("/api/v1/test-files", data={"file": (io.BytesIO(QUICK_TEST), "test_seeded.py"),
                                                      "directory": f"seed-{n}"})
    user = client.post("/api/v1/users", json={"username": f"seed-{n}", "password": PASSWORD, "role": "operator"})
    token = client.post("/api/v1/tokens", json={"name": f"seed-{n}", "expires_in_days": 1})
    member = make_migration(client, make_workload(client, ip=f"10.78.{n // 200}.{n % 200 + 1}")["id"])
    wave = client.post("/api/v1/waves", json={"name": f"seed {n}", "migration_ids": [member["id"]],
                                              "start_at": "2999-01-01T00:00:00Z"})
    schedule = client.post("/api/v1/schedules", json={"name": f"seed {n}", "cron": "0 3 * * *",
                                                      "environment_id": environment_id,
                                                      "test_files": ["sample_tests/test_passing.py"]})
    statuses = (run.status_code, event.status_code, upload.status_code, user.status_code, token.status_code,
                wave.status_code, schedule.status_code)
    assert statuses == (201,) * 7
    return {"workload_id": workload["id"], "migration_id": migration["id"], "run_id": run.json["id"],
            "environment_id": run.json["environment_id"], "event_id": event.json["id"], "path": upload.json["path"],
            "username": user.json["username"], "token_id": token.json["id"], "wave_id": wave.json["id"],
            "schedule_id": schedule.json["id"], "label": "seed",
            "before_id": run.json["id"], "after_id": run.json["id"],  # a run compared with itself
            "nodeid": recorded_test(client.application, run.json["id"], n)}


def recorded_test(app, run_id: int, n: int) -> str:
    """A test result of run ``run_id`` (as a run's end records it), for GET /api/v1/tests/{nodeid}/history."""
    from webapp.extensions import db
    from webapp.models import RunRow, TestResultRow
    from webapp.testhistory import stats

    nodeid = f"seed-{n}/test_seed.py::test_case[a b/c]"
    with app.app_context():
        run = db.session.get(RunRow, run_id)
        db.session.add(TestResultRow(run_id=run_id, environment_id=run.environment_id, nodeid=nodeid,
                                     outcome="failed", duration=0.25, message="assert 1 == 2"))
        db.session.flush()
        stats.update(db.session, run_id)
        db.session.commit()
    return nodeid


def finished(client, work) -> dict:
    """Resources that have been through a worker: a migration that succeeded, a run with a log and a report."""
    ids = seed(client, 1000)
    assert client.post(f"/api/v1/migrations/{ids['migration_id']}/run").status_code == 202
    work()
    assert client.get(f"/api/v1/migrations/{ids['migration_id']}").json["target"]["target_vm"] is not None
    assert client.get(f"/api/v1/runs/{ids['run_id']}").json["state"] == "success"
    return ids


class Fuzzer:
    """Runs hypothesis over one operation's cases; collects failures (one per kind) and the statuses seen.
    ``keep``: ids of tokens no generated DELETE /api/v1/tokens/{token_id} may revoke (the fuzzer's own)."""

    def __init__(self, keep: set[int]) -> None:
        self.failures: dict[tuple, str] = {}
        self.statuses: dict[str, Counter] = {}
        self.seconds: Counter = Counter()
        self.keep = keep

    def run(self, operation, strategy, examples: int, negative: bool = False, refusals=()) -> None:
        """``examples`` cases; the first one is sent again with each of ``refusals``' headers."""
        strategy = strategy.filter(lambda case: (case.path_parameters or {}).get("token_id") not in self.keep)
        pending = list(refusals)

        @given(case=strategy)
        @settings(max_examples=examples, derandomize=True, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        def call(case):
            self.check(operation, case, case.call())
            while pending:
                self.check(operation, case, case.call(headers=pending.pop(0)))

        started = time.monotonic()
        try:
            call()
        except Unsatisfiable:
            assert negative, operation.label  # an operation without any input has no invalid input
        finally:
            self.seconds[operation.label] += time.monotonic() - started

    def check(self, operation, case, response) -> None:
        self.statuses.setdefault(operation.label, Counter())[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except (Exception, BaseExceptionGroup) as exc:  # FailureGroup is a BaseExceptionGroup
            titles = sorted({line.strip("- ") for line in str(exc).splitlines() if line.startswith("- ")})
            self.failures.setdefault((operation.label, response.status_code, *titles), str(exc)[:3000])


def valid_bodies(ids: dict, n: int) -> dict[str, object]:
    """For each operation with a body: one the app accepts, for the freshly seeded resources ``ids``."""
    workload = {"ip": f"10.66.{n // 200}.{n % 200 + 1}", "credentials": {"username": "u", "password": "p"},
                "storage": [{"name": "c:", "size": 10}, {"name": "D:\\", "size": 5}]}
    workload_change = {"storage": [{"name": "C:\\", "size": 41}], "credentials": {"username": "x", "password": ""}}
    migration = {"source_id": ids["workload_id"], "selected_mount_points": ["C:\\"],
                 "target": {"cloud_type": "azure", "cloud_credentials": {"username": "a", "password": "b"}}}
    migration_change = {"selected_mount_points": ["C:\\"], "target": {"cloud_type": "vsphere"}}
    event_change = {"description": "changed while pending", "status": "failed"}
    return {
        "POST /api/v1/workloads": workload,
        "POST /api/v1/workloads/import": [{**workload, "ip": f"10.67.{n // 200}.{n % 200 + 1}"}],
        "PUT /api/v1/workloads/{workload_id}": workload_change,
        "PATCH /api/v1/workloads/{workload_id}": workload_change,
        "POST /api/v1/migrations": migration,
        "PUT /api/v1/migrations/{migration_id}": migration_change,
        "PATCH /api/v1/migrations/{migration_id}": migration_change,
        "POST /api/v1/migrations/{migration_id}/run": {"requested_by": ADMIN},
        "POST /api/v1/runs": {"username": ADMIN, "environment_id": ids["environment_id"],
                              "test_files": ["sample_tests/test_passing.py", ids["path"]]},
        "POST /api/v1/test-files": {"file": QUICK_TEST, "directory": f"valid-{n}", "overwrite": "true"},
        "PATCH /api/v1/environments/{environment_id}": {"name": "renamed", "description": "", "enabled": True},
        "POST /api/v1/events": {"user_id": "fuzz", "description": "valid"},
        "PUT /api/v1/events/{event_id}": event_change,
        "PATCH /api/v1/events/{event_id}": event_change,
        "POST /api/v1/tokens": {"name": f"valid-{n}", "role": "operator", "expires_in_days": 30},
        "POST /api/v1/users": {"username": f"valid-{n}", "password": PASSWORD, "display_name": "Valid"},
        "PATCH /api/v1/users/{username}": {"role": "viewer", "display_name": "Changed", "disabled": True},
        "POST /api/v1/waves": {"name": f"valid {n}", "migration_ids": [ids["migration_id"]], "max_parallel": 2,
                               "start_at": "2999-01-01T00:00:00Z", "stop_on_error": True},
        "POST /api/v1/schedules": {"name": f"valid {n}", "cron": "*/30 * * * *", "environment_id": ids["environment_id"],
                                   "test_files": ["sample_tests/test_passing.py"], "priority": "high", "enabled": False},
        "PATCH /api/v1/schedules/{schedule_id}": {"cron": "15 4 * * 1-5", "enabled": True},
    }


# The media type of the valid body, for an operation that takes several.
VALID_MEDIA = {"POST /api/v1/workloads/import": "application/json"}


# What a fresh resource needs before the operation can succeed on it.
PREPARE = {
    "POST /api/v1/migrations/{migration_id}/cancel": lambda client, ids: client.post(
        f"/api/v1/migrations/{ids['migration_id']}/run"),
    "POST /api/v1/waves/{wave_id}/resume": lambda client, ids: client.post(f"/api/v1/waves/{ids['wave_id']}/pause"),
}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def basic(username: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


UNKNOWN_TOKEN = "cut_" + "x" * 43  # well-formed, never issued


def refusals(operation, viewer_token: str) -> list[dict]:
    """Headers the app must refuse the operation with, whatever the rest of the request: no valid token
    (401), too low a role (403), a body of another type (415), wrong passwords until throttled (429)."""
    raw = operation.definition.raw
    if raw["x-role"] == "anonymous":
        return []
    found = [bearer(UNKNOWN_TOKEN), {"Authorization": "Token x"}]
    found += [bearer(viewer_token)] if raw["x-role"] != "viewer" else []
    found += [{"Content-Type": "text/plain"}] if operation.method.upper() in ("POST", "PUT", "PATCH") else []
    if {"basicAuth": []} in raw.get("security", []):
        found += [basic("fuzz-viewer", "wrong password")] * 6
    return found


def test_schemathesis_finds_no_server_error_and_every_answer_matches_the_document(app, client, work,
                                                                                  registered_worker):
    """Every case is sent with the admin's token, so every operation can succeed; one case of each is sent
    again without a valid token, as a viewer and with a text/plain body, and must be refused as documented."""
    started = time.monotonic()
    done = finished(client, work)
    token = token_for(app, ADMIN, name="schemathesis")
    make_user(app, "fuzz-viewer", "viewer")
    viewer_token = token_for(app, "fuzz-viewer")
    keep = {t["id"] for t in client.get("/api/v1/tokens").json["items"] if t["name"] in ("tests", "schemathesis")}
    admin = bearer(token)
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    untested = documented_operations(schema.raw_schema) - {(op.path, op.method.upper()) for op in operations}
    assert untested == {("/api/openapi.json", "GET")}  # schemathesis leaves out the document it was loaded from
    fuzz = Fuzzer(keep)
    for number, operation in enumerate(operations):
        registered_worker()  # a fresh heartbeat: GET /readyz is ready (its 503 is tested in test_operability.py)
        fuzz.run(operation, operation.as_strategy(headers=admin), GENERATED, refusals=refusals(operation, viewer_token))
        fuzz.run(operation, operation.as_strategy(generation_mode=GenerationMode.NEGATIVE, headers=admin), NEGATIVE,
                 negative=True)
        names = re.findall(r"{(\w+)}", operation.path)
        fresh = seed(client, number)
        if operation.label in PREPARE:
            PREPARE[operation.label](client, fresh)
        for ids in (done, fresh) if names else ():
            fuzz.run(operation, operation.as_strategy(path_parameters={n: ids[n] for n in names}, headers=admin),
                     SEEDED)
        body = valid_bodies(fresh, number).get(operation.label)
        if body is not None:
            fuzz.run(operation, operation.as_strategy(path_parameters={n: fresh[n] for n in names}, body=body,
                                                      headers=admin, media_type=VALID_MEDIA.get(operation.label)), 1)
    elapsed = time.monotonic() - started
    print(f"\nschemathesis: {sum(sum(seen.values()) for seen in fuzz.statuses.values())} calls in {elapsed:.1f} s")
    for label, seen in fuzz.statuses.items():
        print(f"  {label}: {dict(sorted(seen.items()))} in {fuzz.seconds[label]:.1f} s")
    assert not fuzz.failures, f"{len(fuzz.failures)} kinds of failure:\n\n" + "\n\n".join(
        f"{key}\n{text}" for key, text in fuzz.failures.items())
    never_ok = [label for label, seen in fuzz.statuses.items() if not any(200 <= s < 300 for s in seen)]
    assert never_ok == [], "operations that never succeeded, so their success shapes went unchecked"
    unrefused = [(op.label, status) for op in operations for status in (401, 403, 415, 429)
                 if str(status) in op.definition.raw["responses"] and status not in fuzz.statuses[op.label]
                 and op.definition.raw["x-role"] != "anonymous"
                 and (status != 403 or op.definition.raw["x-role"] != "viewer")]
    assert unrefused == [], "documented refusals the app never gave"


def test_a_test_file_path_with_a_nul_character_is_refused_not_a_server_error(client):
    run = client.post("/api/v1/runs", json={"username": "a", "environment_id": 1,
                                            "test_files": ["sample_tests/a\u0000b/test_x.py"]})
    deleted = client.delete("/api/v1/test-files/uploads/a%00b/test_x.py")
    assert (run.status_code, deleted.status_code) == (422, 404)
