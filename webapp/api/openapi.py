"""The OpenAPI 3.1 description of the JSON API, built from small helpers.

Served as ``GET /api/openapi.json`` and, for people, as ``GET /api/docs`` (rendered here, no JavaScript).
The shapes follow the ``as_json`` functions of the services; ``tests/test_openapi.py`` keeps the two in step.
"""
from __future__ import annotations

import copy
import re
from functools import lru_cache
from typing import Any

from flask import render_template
from markupsafe import Markup, escape

from ..domain.accounts import (ANONYMOUS, DISPLAY_NAME_MAX, MAX_TOKEN_DAYS, PASSWORD_MAX, PASSWORD_MIN,
                               TOKEN_NAME_MAX, USERNAME_PATTERN, Role)
from ..domain.environments import DESCRIPTION_MAX as ENVIRONMENT_DESCRIPTION_MAX, NAME_MAX
from ..domain.events import DESCRIPTION_MAX, USER_ID_MAX, EventSource, EventStatus
from ..domain.migration import CloudType, MigrationState
from ..domain.runs import ENVIRONMENT_IDS, MAX_FILES, USERNAME_MAX, RunState
from ..inputs import DEFAULT_PER_PAGE, MAX_ID, MAX_PER_PAGE
from ..auth import public
from ..health import HEARTBEAT_SECONDS
from ..version import VERSION
from . import bp

JSON, XML, TEXT, HTML = "application/json", "application/xml", "text/plain", "text/html"
MULTIPART = "multipart/form-data"

Schema = dict[str, Any]


# --- schema helpers --------------------------------------------------------------------------------

def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _typed(kind: str, nullable: bool, **extra) -> Schema:
    return {"type": [kind, "null"] if nullable else kind, **extra}


def string(nullable: bool = False, **extra) -> Schema:
    return _typed("string", nullable, **extra)


def integer(nullable: bool = False, **extra) -> Schema:
    return _typed("integer", nullable, **extra)


def number(nullable: bool = False, **extra) -> Schema:
    return _typed("number", nullable, **extra)


def boolean(**extra) -> Schema:
    return {"type": "boolean", **extra}


def timestamp(nullable: bool = False, **extra) -> Schema:
    return string(nullable, format="date-time", **extra)


def enum(values, nullable: bool = False, **extra) -> Schema:
    values = [getattr(v, "value", v) for v in values]
    return {"type": ["string", "null"] if nullable else "string", "enum": values + [None] * nullable, **extra}


def array(items: Schema, **extra) -> Schema:
    return {"type": "array", "items": items, **extra}


def nullable(schema: Schema) -> Schema:
    """A referenced schema, or null."""
    return {"anyOf": [schema, {"type": "null"}]}


def obj(properties: dict[str, Schema], required: list[str] | None = None, *, closed: bool = True, **extra) -> Schema:
    """An object; by default every property is required and no other is sent (the shape of a response)."""
    schema: Schema = {"type": "object", "properties": properties,
                      "required": list(properties) if required is None else required}
    if closed:
        schema["additionalProperties"] = False
    return {**schema, **{k: v for k, v in extra.items() if v is not None}}


def described(schema: Schema, text: str) -> Schema:
    return {**schema, "description": text}


# --- the shapes ------------------------------------------------------------------------------------

def _page(item: str, what: str) -> Schema:
    return obj({"items": array(ref(item)), "total": integer(minimum=0, description=f"How many {what} in all."),
                "page": integer(minimum=1), "per_page": integer(minimum=1, maximum=MAX_PER_PAGE)},
               description=f"One page of {what}.")


CREDENTIALS_OUT = obj({"username": string(), "domain": string(),
                       "password_set": boolean(description="Whether a password is stored (it is never shown).")})
VOLUME = obj({"name": string(examples=["C:\\"]), "size": integer(minimum=1, description="GiB")})
PROGRESS = obj({
    "percent": number(minimum=0, maximum=100, description="Overall, by size, one decimal."),
    "mount_points": array(obj({"name": string(), "size": integer(minimum=1), "copied": number(minimum=0)})),
})


def _credentials_in(keep: bool) -> Schema:
    password = ("Leave out or blank to keep the stored password." if keep else "Stored encrypted, never shown again.")
    return obj({"username": string(minLength=1, pattern=r"\S"),
                "password": string(nullable=True, description=password) if keep
                else string(minLength=1, pattern=r"\S", description=password),
                "domain": string(nullable=True)},
               ["username"] if keep else ["username", "password"], closed=False)


def _workload_in(update: bool) -> Schema:
    ip = string(examples=["10.0.0.5"], description="An IPv4 or IPv6 address"
                + (": only the current one may be sent, it never changes." if update else "; unique."))
    storage = array(obj({"name": string(minLength=1, pattern=r"\S", examples=["C:\\"]),
                         "size": integer(minimum=1, description="GiB")}, closed=False),
                    description="Volumes; names are unique (c:, C: and C:\\ are one volume).")
    return obj({"ip": ip, "credentials": _credentials_in(keep=update), "storage": storage},
               [] if update else ["ip", "credentials"], closed=False,
               description="Fields not sent stay as they are." if update else None)


def _migration_in(update: bool) -> Schema:
    target = obj({"cloud_type": enum(CloudType), "cloud_credentials": _credentials_in(keep=update)},
                 [] if update else ["cloud_type", "cloud_credentials"], closed=False)
    properties = {
        "source_id": integer(minimum=1, maximum=MAX_ID, description="The source workload's id"
                             + (": never changes, only its current value may be sent." if update else ".")),
        "selected_mount_points": array(string(examples=["C:\\"]), minItems=1, uniqueItems=True,
                                       description="Names of the source's volumes to copy; C:\\ is needed to run."),
        "target": target,
    }
    if update:
        properties["state"] = described(enum(MigrationState), "Never changes here: only its current value may be sent.")
    return obj(properties, [] if update else ["source_id", "selected_mount_points", "target"], closed=False,
               description="Fields not sent stay as they are." if update else None)


def _event_patch() -> Schema:
    read_only = {"id", "source", "link", "attempts", "last_error", "created_at", "processed_at"}
    properties = {
        "user_id": string(minLength=1, maxLength=USER_ID_MAX, pattern=r"\S", description="Only while pending."),
        "description": string(minLength=1, maxLength=DESCRIPTION_MAX, pattern=r"\S", description="Only while pending."),
        "status": described(enum(EventStatus), "pending → processed or failed; failed → pending (queued again)."),
    }
    return obj(properties, [], closed=False,
               description="Read-only fields (" + ", ".join(sorted(read_only)) + ") may only be sent unchanged.")


def schemas() -> dict[str, Schema]:
    return {
        "Error": obj({"error": obj({
            "code": string(description="snake_case, e.g. not_found, validation_error, invalid_state."),
            "message": string(),
            "fields": {"type": "object", "additionalProperties": array(string()),
                       "description": "Messages by dotted field path, e.g. storage.0.size."},
        })}),
        "Ping": obj({"status": enum(["ok"]), "time": timestamp(description="UTC, e.g. 2024-05-01T12:00:00Z"),
                     "version": string(description="The release.", examples=[VERSION])}),
        "Readiness": obj({"status": enum(["ready", "not_ready"]), "checks": obj({
            "database": string(description="`ok`, or why not (e.g. `unreachable: OperationalError`)."),
            "redis": string(description="`ok`, or why not (e.g. `unreachable: ConnectionError`)."),
            "schema": string(description="`ok` when the database is at the newest Alembic revision, "
                                         "else e.g. `not at head: at 0003_accounts, head is 0004_…`."),
            "workers": string(description=f"`ok` when a worker heartbeated in the last {HEARTBEAT_SECONDS} s, "
                                          "else e.g. `none: no worker registered`."),
        })}),
        "Credentials": CREDENTIALS_OUT,
        "Volume": VOLUME,
        "Progress": PROGRESS,
        "Workload": obj({"id": integer(minimum=1), "ip": string(), "credentials": ref("Credentials"),
                         "storage": array(ref("Volume")), "created_at": timestamp(), "updated_at": timestamp()}),
        "WorkloadInput": _workload_in(update=False),
        "WorkloadUpdate": _workload_in(update=True),
        "WorkloadPage": _page("Workload", "workloads"),
        "TargetVM": obj({"ip": string(), "credentials": ref("Credentials"), "storage": array(ref("Volume"))}),
        "Migration": obj({
            "id": integer(minimum=1), "source_id": integer(minimum=1), "selected_mount_points": array(string()),
            "target": obj({"cloud_type": enum(CloudType), "cloud_credentials": ref("Credentials"),
                           "target_vm": described(nullable(ref("TargetVM")), "Set once the migration succeeded.")}),
            "state": enum(MigrationState), "error": string(nullable=True), "progress": ref("Progress"),
            "requested_by": string(nullable=True), "created_at": timestamp(), "started_at": timestamp(nullable=True),
            "finished_at": timestamp(nullable=True),
        }),
        "MigrationInput": _migration_in(update=False),
        "MigrationUpdate": _migration_in(update=True),
        "MigrationRunRequest": obj({"requested_by": string(
            nullable=True, maxLength=128, description=(
                "Optional: who is notified when it ends is always the signed-in account. Leave it out or send "
                "your own username; any other name is refused (422)."))},
            [], closed=False),
        "MigrationStatus": obj({"state": enum(MigrationState), "finished": boolean(), "progress": ref("Progress"),
                                "error": string(nullable=True)}),
        "MigrationPage": _page("Migration", "migrations, newest first"),
        "RunSummary": obj({n: integer(minimum=0) for n in ("total", "passed", "failed", "errors", "skipped")}),
        "TestResult": obj({"nodeid": string(), "outcome": enum(["passed", "failed", "error", "skipped"]),
                           "duration": number(minimum=0, description="seconds")}),
        "Run": obj({
            "id": integer(minimum=1), "username": string(), "environment_id": integer(minimum=1),
            "test_files": array(string()), "state": enum(RunState),
            "queue_position": integer(nullable=True, minimum=0,
                                      description="While queued: 1 = next in line, 0 = given the environment."),
            "exit_code": integer(nullable=True), "summary": ref("RunSummary"), "tests": array(ref("TestResult")),
            "error": string(nullable=True), "created_at": timestamp(), "started_at": timestamp(nullable=True),
            "finished_at": timestamp(nullable=True),
            "duration": number(nullable=True, minimum=0, description="seconds"),
            "sandbox": obj({
                "mode": string(nullable=True, examples=["landlock+pidns"], description=(
                    "How the test code was confined: landlock+pidns (all of it), landlock or pidns (part: the "
                    "detail says what is missing), off (SANDBOX=off: unconfined), unavailable (the run ended "
                    "in error). null until the run starts.")),
                "detail": string(nullable=True, description="What was blocked and what is missing, in words.")}),
        }),
        "RunInput": obj({
            "username": string(nullable=True, maxLength=USERNAME_MAX, description=(
                "Optional: the run is always the signed-in account's. Leave it out or send your own username; "
                "any other name is refused (422).")),
            "environment_id": integer(minimum=ENVIRONMENT_IDS[0], maximum=ENVIRONMENT_IDS[-1],
                                      description="An enabled environment (a string of digits is accepted too)."),
            "test_files": array(string(minLength=1, examples=["sample_tests/test_passing.py"]), minItems=1,
                                maxItems=MAX_FILES, uniqueItems=True, description="Paths from GET /api/v1/test-files."),
        }, ["environment_id", "test_files"], closed=False),
        "RunPage": _page("Run", "runs, newest first"),
        "LogSlice": obj({"text": string(), "offset": integer(minimum=0, description="The offset asked for."),
                         "next_offset": integer(minimum=0, description="Ask for this one next."),
                         "complete": boolean(description="The run has ended and this is the log's end.")}),
        "TestFile": obj({"path": string(examples=["sample_tests/test_passing.py"]), "directory": string(),
                         "size": integer(minimum=0, description="bytes"),
                         "uploaded": boolean(description="False for the shipped, read-only samples."),
                         "owner": string(nullable=True, description="Uploads only: who uploaded it (null: before accounts); "
                                                                    "only they or an admin may replace or delete it.")},
                        ["path", "directory", "size", "uploaded"]),
        "TestFileUpload": obj({
            "file": string(contentMediaType="application/octet-stream",
                           description="A Python file named test_*.py or *_test.py, at most 1 MiB of UTF-8."),
            "directory": string(examples=["smoke"], description="a-z, 0-9, _ and -; a new name creates it."),
            "overwrite": string(examples=["true"], description="true, 1, yes or on to replace an existing file."),
        }, ["file", "directory"], closed=False),
        "Environment": obj({
            "id": integer(minimum=ENVIRONMENT_IDS[0], maximum=ENVIRONMENT_IDS[-1]), "name": string(),
            "description": string(), "enabled": boolean(), "status": enum(["idle", "busy"]),
            "current_run_id": integer(nullable=True, minimum=1), "queue": array(integer(minimum=1),
                                                                               description="Waiting runs, in order."),
        }),
        "EnvironmentPatch": obj({
            "name": string(minLength=1, maxLength=NAME_MAX, pattern=r"\S"),
            "description": string(maxLength=ENVIRONMENT_DESCRIPTION_MAX),
            "enabled": boolean(description="A disabled environment accepts no new runs."),
        }, [], description="Any other field is refused (422)."),
        "EnvironmentList": obj({"items": array(ref("Environment")), "total": integer(minimum=0),
                                "page": integer(minimum=1), "per_page": integer(minimum=0)},
                               description="Every environment, on one page."),
        "Event": obj({
            "id": string(format="uuid"), "user_id": string(), "description": string(), "status": enum(EventStatus),
            "source": enum(EventSource), "link": string(nullable=True, description="The page it is about."),
            "attempts": integer(minimum=0), "last_error": string(nullable=True), "created_at": timestamp(),
            "processed_at": timestamp(nullable=True),
        }),
        "EventInput": obj({"user_id": string(minLength=1, maxLength=USER_ID_MAX, pattern=r"\S"),
                           "description": string(minLength=1, maxLength=DESCRIPTION_MAX, pattern=r"\S")}, closed=False),
        "EventPatch": _event_patch(),
        "EventPage": _page("Event", "events, newest first"),
        **_account_schemas(),
    }


ROLE = enum(Role, description="viewer < operator < admin: each may do all the one before it may.")


def _account_schemas() -> dict[str, Schema]:
    user = {"username": string(description="Lower-case letters, digits, `_`, `.` and `-`."),
            "display_name": string(description="\"\" when not set."), "role": ROLE, "disabled": boolean(),
            "created_at": timestamp(), "last_login_at": timestamp(nullable=True)}
    token = {"id": integer(minimum=1), "name": string(), "role": described(ROLE, "What the token may do "
                                                                                   "(never more than its owner)."),
             "user": string(description="The owner's username."),
             "prefix": string(description="The token's first 8 characters, to tell tokens apart."),
             "created_at": timestamp(), "expires_at": timestamp(nullable=True, description="null: never."),
             "last_used_at": timestamp(nullable=True, description="Updated at most once a minute."),
             "revoked": boolean()}
    password = string(minLength=PASSWORD_MIN, maxLength=PASSWORD_MAX, description="No NUL characters.")
    display_name = string(nullable=True, maxLength=DISPLAY_NAME_MAX, description="Printable, trimmed.")
    return {
        "User": obj(user),
        "Me": obj({**user, "acting_role": described(ROLE, "The role this request acts with: the token's, "
                                                          "at most the account's.")}),
        "UserList": obj({"items": array(ref("User"))}, description="Every account, by username."),
        "UserInput": obj({
            "username": string(pattern=USERNAME_PATTERN, description=f"1 to {USERNAME_MAX} letters, digits, `_`, `.` or `-`; "
                                                                      "stored lower-case, unique."),
            "password": password,
            "role": described(ROLE, "Default viewer."),
            "display_name": display_name,
        }, ["username", "password"], closed=False),
        "UserPatch": obj({
            "role": ROLE, "disabled": boolean(description="A disabled account cannot sign in; its sessions end "
                                                          "and its tokens stop working."),
            "display_name": display_name,
            "password": described(password, "A new password: the account's sessions end."),
            "username": string(description="Never changes: only its current value may be sent."),
        }, [], description="Fields not sent stay as they are; any other field is refused (422). You cannot "
                           "lower or disable your own account."),
        "Token": obj(token),
        "NewToken": obj({**token, "token": string(
            description="The secret (`cut_` + 43 characters): shown only in this answer, never again.")}),
        "TokenList": obj({"items": array(ref("Token"))}, description="Tokens not revoked, by id."),
        "TokenInput": obj({
            "name": string(minLength=1, maxLength=TOKEN_NAME_MAX, pattern=r"\S",
                           description="What it is for, e.g. ci (printable, trimmed)."),
            "role": described(enum(Role, nullable=True), "At most your own role (the default)."),
            "expires_in_days": integer(nullable=True, minimum=1, maximum=MAX_TOKEN_DAYS,
                                       description="Leave out or null: it never expires."),
        }, ["name"], closed=False),
        "AuditEntry": obj({
            "id": integer(minimum=1), "at": timestamp(), "actor": string(description="A username, or system."),
            "via": enum(["web", "api", "cli", "worker"]), "action": string(examples=["run.create"]),
            "target": string(examples=["run:12"]), "ip": string(nullable=True),
            "details": {"type": "object", "description": "What changed (never a secret)."},
        }),
        "AuditPage": _page("AuditEntry", "audit entries, newest first"),
    }


# --- parameters, bodies, responses -----------------------------------------------------------------

def path_id(name: str, what: str, **schema) -> dict:
    return {"name": name, "in": "path", "required": True, "description": f"The {what}'s id.",
            "schema": integer(minimum=1, maximum=MAX_ID, **schema)}


def query(name: str, schema: Schema, text: str) -> dict:
    return {"name": name, "in": "query", "required": False, "description": text, "schema": schema}


PAGING = [
    query("page", integer(minimum=1, maximum=10**9, default=1), "Page number, from 1."),
    query("per_page", integer(minimum=1, maximum=10**9, default=DEFAULT_PER_PAGE),
          f"Items per page; more than {MAX_PER_PAGE} is served as {MAX_PER_PAGE}."),
]


def json_body(schema: Schema, required: bool = True) -> dict:
    return {"required": required, "content": {JSON: {"schema": schema}}}


def ok(description: str, schema: Schema, media: str = JSON) -> dict:
    return {"description": description, "content": {media: {"schema": schema}}}


def created(description: str, schema: Schema) -> dict:
    return {**ok(description, schema), "headers": {"Location": {
        "description": "Where the new resource (or list) is.", "required": True, "schema": string()}}}


NO_CONTENT = {"description": "Done; no body."}

# The error codes behind each status, as the error handlers and services raise them.
ERROR_TEXT = {
    400: "The body is not a JSON object (`bad_json`).",
    401: "No valid `Authorization: Bearer <token>`: missing, malformed, unknown, expired or revoked "
         "(`unauthorized`).",
    403: "Your role may not do this (`forbidden`).",
    404: "No such resource (`not_found`).",
    409: "Conflicts with the current state.",
    413: "The request (2 MiB) or upload (1 MiB) is too large (`too_large`).",
    415: "The body is not of the one media type this operation takes (`unsupported_media_type`).",
    422: "Invalid input; `fields` says which and why.",
    429: "Too many failed sign-ins for this username or address (`too_many_attempts`): wait `Retry-After` seconds.",
}


def error(status: int, codes: list[str], text: str | None = None) -> dict:
    schema = {"allOf": [ref("Error"), {"properties": {"error": {"properties": {"code": {"enum": codes}}}}}]}
    return ok(text or ERROR_TEXT[status], schema)


def errors(*statuses: int, **codes: list[str]) -> dict:
    """Error responses by status; the codes of 409 and 422 differ by operation (``c409=[...]``, ``c422=[...]``)."""
    defaults = {400: ["bad_json"], 401: ["unauthorized"], 403: ["forbidden"], 404: ["not_found"],
                409: ["invalid_state"], 413: ["too_large"], 415: ["unsupported_media_type"],
                422: ["validation_error"], 429: ["too_many_attempts"]}
    return {str(s): error(s, codes.get(f"c{s}", defaults[s]), codes.get(f"t{s}")) for s in statuses}


def operation(op_id: str, tag: str, summary: str, responses: dict, *, params=(), body=None, description=None) -> dict:
    op = {"operationId": op_id, "tags": [tag], "summary": summary, "responses": responses}
    if description:
        op["description"] = description
    if params:
        op["parameters"] = list(params)
    if body:
        op["requestBody"] = body
    return op


# --- the operations --------------------------------------------------------------------------------

def _workload_paths() -> dict:
    wid = path_id("workload_id", "workload")
    update = dict(params=[wid], body=json_body(ref("WorkloadUpdate")),
                  description="Fields not sent stay; a different `ip` is refused (`immutable_field`).")
    update_responses = {"200": ok("The updated workload.", ref("Workload")),
                        **errors(400, 404, 409, 413, 422, c409=["duplicate_ip"],
                                 c422=["validation_error", "immutable_field"])}
    return {
        "/api/v1/workloads": {
            "get": operation("listWorkloads", "workloads", "List workloads", {
                "200": ok("One page of workloads, by id.", ref("WorkloadPage")), **errors(422)}, params=PAGING),
            "post": operation("createWorkload", "workloads", "Create a workload", {
                "201": created("The new workload.", ref("Workload")),
                **errors(400, 409, 413, 422, c409=["duplicate_ip"],
                         t409="Another workload has this IP (`duplicate_ip`).")},
                body=json_body(ref("WorkloadInput"))),
        },
        "/api/v1/workloads/{workload_id}": {
            "get": operation("getWorkload", "workloads", "Read a workload", {
                "200": ok("The workload.", ref("Workload")), **errors(404)}, params=[wid]),
            "put": operation("replaceWorkload", "workloads", "Update a workload", update_responses, **update),
            "patch": operation("updateWorkload", "workloads", "Update a workload (same as PUT)", update_responses,
                               **update),
            "delete": operation("deleteWorkload", "workloads", "Delete a workload", {
                "204": NO_CONTENT, **errors(404, 409, c409=["in_use"],
                                            t409="It is the source of a migration (`in_use`).")}, params=[wid]),
        },
    }


def _migration_paths() -> dict:
    mid = path_id("migration_id", "migration")
    update = dict(params=[mid], body=json_body(ref("MigrationUpdate")),
                  description="Only while `not_started` or `error`; `source_id` and `state` never change.")
    update_responses = {"200": ok("The updated migration.", ref("Migration")),
                        **errors(400, 404, 409, 413, 422, t409="It is running or done (`invalid_state`).",
                                 c422=["validation_error", "immutable_field"])}
    return {
        "/api/v1/migrations": {
            "get": operation("listMigrations", "migrations", "List migrations", {
                "200": ok("One page of migrations, newest first.", ref("MigrationPage")), **errors(422)},
                params=PAGING),
            "post": operation("createMigration", "migrations", "Create a migration", {
                "201": created("The new migration (`not_started`).", ref("Migration")), **errors(400, 413, 422)},
                body=json_body(ref("MigrationInput"))),
        },
        "/api/v1/migrations/{migration_id}": {
            "get": operation("getMigration", "migrations", "Read a migration", {
                "200": ok("The migration.", ref("Migration")), **errors(404)}, params=[mid]),
            "put": operation("replaceMigration", "migrations", "Update a migration", update_responses, **update),
            "patch": operation("updateMigration", "migrations", "Update a migration (same as PUT)", update_responses,
                               **update),
            "delete": operation("deleteMigration", "migrations", "Delete a migration", {
                "204": NO_CONTENT, **errors(404, 409, t409="It is running (`invalid_state`).")}, params=[mid]),
        },
        "/api/v1/migrations/{migration_id}/run": {
            "post": operation("runMigration", "migrations", "Run a migration", {
                "202": ok("Queued: the migration is `running`.", ref("Migration")),
                **errors(400, 404, 409, 413, 422, t409="It is running or done (`invalid_state`).",
                         c422=["system_volume_required", "validation_error"],
                         t422="C:\\ is not selected (`system_volume_required`: the migration ends `error`), "
                              "or `requested_by` is not the signed-in account.")},
                params=[mid], body=json_body(ref("MigrationRunRequest"), required=False),
                description="The signed-in account is told when it ends (`requested_by` may only name it)."),
        },
        "/api/v1/migrations/{migration_id}/status": {
            "get": operation("getMigrationStatus", "migrations", "A migration's state and progress", {
                "200": ok("For polling.", ref("MigrationStatus")), **errors(404)}, params=[mid]),
        },
        "/api/v1/migrations/{migration_id}/cancel": {
            "post": operation("cancelMigration", "migrations", "Cancel a running migration", {
                "202": ok("Cancelling: it ends `error` (`cancelled`) within 2 s.", ref("Migration")),
                **errors(404, 409, t409="It is not running (`invalid_state`).")}, params=[mid]),
        },
    }


def _run_paths() -> dict:
    rid = path_id("run_id", "run")
    new_run = {"201": created("The new run, queued (or already given its environment).", ref("Run"))}
    return {
        "/api/v1/runs": {
            "get": operation("listRuns", "runs", "List test runs", {
                "200": ok("One page of runs, newest first.", ref("RunPage")), **errors(422)},
                params=PAGING + [
                    query("state", enum(RunState), "Only runs in this state."),
                    query("environment_id", integer(minimum=ENVIRONMENT_IDS[0], maximum=ENVIRONMENT_IDS[-1]),
                          "Only runs in this environment."),
                    query("username", string(), "Only runs started by this name."),
                ]),
            "post": operation("createRun", "runs", "Start a test run", {**new_run, **errors(400, 413, 422)},
                              body=json_body(ref("RunInput")),
                              description="An environment hosts one run at a time: later runs wait, in order. "
                                          "The run is the signed-in account's (`username` may only name it)."),
        },
        "/api/v1/runs/{run_id}": {
            "get": operation("getRun", "runs", "Read a run", {
                "200": ok("The run, with its place in the queue.", ref("Run")), **errors(404)}, params=[rid]),
        },
        "/api/v1/runs/{run_id}/log": {
            "get": operation("getRunLog", "runs", "A slice of a run's log", {
                "200": ok("Poll again with `next_offset` until `complete`.", ref("LogSlice")), **errors(404, 422)},
                params=[rid, query("offset", integer(minimum=0, default=0),
                                   "Characters already read; past the end reads \"\".")]),
        },
        "/api/v1/runs/{run_id}/cancel": {
            "post": operation("cancelRun", "runs", "Cancel a run", {
                "202": ok("Queued: cancelled at once. Running: pytest is killed within 2 s.", ref("Run")),
                **errors(404, 409, t409="It has already ended (`invalid_state`).")}, params=[rid]),
        },
        "/api/v1/runs/{run_id}/rerun": {
            "post": operation("rerun", "runs", "Start a new run with the same inputs", {
                **new_run, **errors(404, 422, t422="Its environment is disabled or a test file is gone.")},
                params=[rid]),
        },
        "/api/v1/runs/{run_id}/junit.xml": {
            "get": operation("getRunJunit", "runs", "Download the JUnit XML report", {
                "200": ok("The report (an attachment).", string(), XML),
                **errors(404, t404="No such run, or it has no report (yet).")}, params=[rid]),
        },
        "/api/v1/runs/{run_id}/log.txt": {
            "get": operation("getRunLogText", "runs", "Download the whole log", {
                "200": ok("The log (an attachment, UTF-8).", string(), TEXT), **errors(404)}, params=[rid]),
        },
    }


def _test_file_paths() -> dict:
    return {
        "/api/v1/test-files": {
            "get": operation("listTestFiles", "test files", "List test files", {
                "200": ok("Samples and uploads, by directory then path.", array(ref("TestFile")))}),
            "post": operation("uploadTestFile", "test files", "Upload a test file", {
                "201": created("The stored file; `Location` is the list.", ref("TestFile")),
                **errors(403, 409, 413, 422, c409=["file_exists"],
                         t403="Your role may not upload, or the file is another account's upload: only its "
                              "uploader or an admin may replace it (`forbidden`).",
                         t409="The file exists and `overwrite` was not set (`file_exists`).")},
                body={"required": True, "content": {MULTIPART: {
                    "schema": ref("TestFileUpload"), "encoding": {"file": {
                        "contentType": "text/x-python, application/octet-stream",
                        "headers": {"Content-Disposition": {
                            "schema": string(), "description": "The file name is the test module's name.",
                            "example": 'form-data; name="file"; filename="test_login.py"'}}}}}}}),
        },
        "/api/v1/test-files/{path}": {
            "delete": operation("deleteTestFile", "test files", "Delete an uploaded test file", {
                "204": NO_CONTENT, **errors(403, 404, c403=["read_only", "forbidden"],
                                            t403="Shipped samples are read-only (`read_only`); only its uploader "
                                                 "or an admin may delete an upload (`forbidden`).")},
                params=[{"name": "path", "in": "path", "required": True, "schema": string(minLength=1),
                         "description": "The file's path as listed, e.g. `uploads/smoke/test_login.py` "
                                        "(its slashes may be sent as they are)."}]),
        },
    }


def _environment_paths() -> dict:
    eid = {**path_id("environment_id", "environment"),
           "schema": integer(minimum=ENVIRONMENT_IDS[0], maximum=ENVIRONMENT_IDS[-1])}
    return {
        "/api/v1/environments": {
            "get": operation("listEnvironments", "environments", "List environments", {
                "200": ok("Every environment with its status, current run and queue.", ref("EnvironmentList"))}),
        },
        "/api/v1/environments/{environment_id}": {
            "get": operation("getEnvironment", "environments", "Read an environment", {
                "200": ok("The environment.", ref("Environment")), **errors(404)}, params=[eid]),
            "patch": operation("updateEnvironment", "environments", "Rename, describe, enable or disable", {
                "200": ok("The updated environment.", ref("Environment")), **errors(400, 404, 413, 422)},
                params=[eid], body=json_body(ref("EnvironmentPatch"))),
        },
        "/api/v1/environments/{environment_id}/unlock": {
            "post": operation("unlockEnvironment", "environments", "Force-release a stuck lock", {
                "200": ok("Released: its run ends `error`, the next one starts.", ref("Environment")),
                **errors(404)}, params=[eid]),
        },
    }


def _event_paths() -> dict:
    event_id = {"name": "event_id", "in": "path", "required": True, "description": "The event's id (a UUID).",
                "schema": string(format="uuid")}
    update = dict(params=[event_id], body=json_body(ref("EventPatch")),
                  description="Edit `user_id`/`description` while pending; move `status` along its transitions.")
    update_responses = {
        "200": ok("The updated event.", ref("Event")),
        **errors(400, 403, 404, 409, 413, 422, c409=["invalid_transition", "invalid_state"],
                 t403="Your role may not edit events, or it is not an admin's and `status` changes (`forbidden`).",
                 t409="A status change its life does not allow (`invalid_transition`), or it is no longer "
                      "pending (`invalid_state`).", c422=["validation_error", "immutable_field"]),
    }
    return {
        "/api/v1/events": {
            "get": operation("listEvents", "events", "List events", {
                "200": ok("One page of events, newest first.", ref("EventPage")), **errors(422)},
                params=PAGING + [query("status", enum(EventStatus), "Only events with this status."),
                                 query("user_id", string(), "Only events for this user.")]),
            "post": operation("createEvent", "events", "Record an event", {
                "201": created("The new event, `pending` (delivery is queued).", ref("Event")),
                **errors(400, 413, 422)}, body=json_body(ref("EventInput"))),
        },
        "/api/v1/events/{event_id}": {
            "get": operation("getEvent", "events", "Read an event", {
                "200": ok("The event.", ref("Event")), **errors(404)}, params=[event_id]),
            "put": operation("replaceEvent", "events", "Update an event", update_responses, **update),
            "patch": operation("updateEvent", "events", "Update an event (same as PUT)", update_responses, **update),
        },
    }


def _account_paths() -> dict:
    username = {"name": "username", "in": "path", "required": True, "description": "The account's username "
                "(case does not matter).", "schema": string(minLength=1)}
    tid = path_id("token_id", "token")
    return {
        "/api/v1/me": {
            "get": operation("getMe", "accounts", "Who am I", {
                "200": ok("Your account, and the role this token acts with.", ref("Me"))}),
        },
        "/api/v1/tokens": {
            "get": operation("listTokens", "accounts", "List API tokens", {
                "200": ok("Your tokens (or, for an admin, another account's or everyone's).", ref("TokenList")),
                **errors(403, 404, t403="Only an admin may list another account's tokens (`forbidden`).",
                         t404="No such account (`not_found`).")},
                params=[query("user", string(), "An admin only: another account's username, or `*` for all.")]),
            "post": operation("createToken", "accounts", "Create an API token", {
                "201": created("The new token, with its secret (`token`), shown only now; `Location` is the list.",
                               ref("NewToken")),
                **errors(400, 413, 422, t422="`name` is missing, or `role` is above your own, or "
                                             "`expires_in_days` is out of range.")},
                body=json_body(ref("TokenInput")),
                description="For your own account. A script's first token can be had with HTTP Basic "
                            "(`username:password`); failed passwords are throttled (429)."),
        },
        "/api/v1/tokens/{token_id}": {
            "delete": operation("revokeToken", "accounts", "Revoke an API token", {
                "204": NO_CONTENT,
                **errors(404, t404="No such token, already revoked, or another account's and you are not "
                                   "an admin (`not_found`).")}, params=[tid]),
        },
        "/api/v1/users": {
            "get": operation("listUsers", "accounts", "List accounts", {
                "200": ok("Every account, by username.", ref("UserList"))}),
            "post": operation("createUser", "accounts", "Create an account", {
                "201": created("The new account.", ref("User")),
                **errors(400, 409, 413, 422, c409=["duplicate_username"],
                         t409="The username is taken (`duplicate_username`).")},
                body=json_body(ref("UserInput"))),
        },
        "/api/v1/users/{username}": {
            "get": operation("getUser", "accounts", "Read an account", {
                "200": ok("The account.", ref("User")), **errors(404)}, params=[username]),
            "patch": operation("updateUser", "accounts", "Change an account's role, name, password or status", {
                "200": ok("The updated account.", ref("User")), **errors(400, 404, 413, 422)},
                params=[username], body=json_body(ref("UserPatch"))),
        },
        "/api/v1/audit": {
            "get": operation("listAudit", "audit", "Read the audit log", {
                "200": ok("One page of entries, newest first.", ref("AuditPage")),
                **errors(422, t422="A bad page, or `since`/`until` is not an ISO 8601 date or time.")},
                params=PAGING + [
                    query("actor", string(), "Only entries by this username (or `system`)."),
                    query("action", string(), "Only this action, e.g. `run.create`; `run` finds every `run.*`."),
                    query("target", string(), "Only entries about this, e.g. `run:12`."),
                    query("since", string(examples=["2026-12-01T08:00:00Z"]), "From this time (ISO 8601)."),
                    query("until", string(examples=["2026-12-31"]), "Up to this time (ISO 8601)."),
                ]),
        },
    }


# --- who may call what (webapp.auth): GETs need a viewer, other methods an operator, except these ----

ROLES: dict[str, Role | str] = {
    "ping": ANONYMOUS, "readyz": ANONYMOUS, "openapi": ANONYMOUS, "docs": ANONYMOUS,
    "createToken": Role.VIEWER, "revokeToken": Role.VIEWER,
    "updateEnvironment": Role.ADMIN, "unlockEnvironment": Role.ADMIN,
    "listUsers": Role.ADMIN, "createUser": Role.ADMIN, "getUser": Role.ADMIN, "updateUser": Role.ADMIN,
    "listAudit": Role.ADMIN,
}
BASIC_AUTH = {"createToken"}  # also takes HTTP Basic (throttled)
BODY_METHODS = ("post", "put", "patch")
WWW_AUTHENTICATE = {"description": 'Always `Bearer realm="cutover"`.', "required": True, "schema": string()}
RETRY_AFTER = {"description": "Seconds to wait.", "required": True, "schema": string(pattern="^[0-9]+$")}

SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "cut_…",
                   "description": "An API token: `Authorization: Bearer <token>`. Create one with "
                                  "POST /api/v1/tokens (or on your account page); it acts with its own role, "
                                  "never more than its owner's."},
    "basicAuth": {"type": "http", "scheme": "basic",
                  "description": "`username:password`, only for POST /api/v1/tokens (a script's first token). "
                                 "Five failures a minute per username or address answer 429."},
}


def role_of(method: str, op: dict) -> Role | str:
    return ROLES.get(op["operationId"], Role.VIEWER if method == "get" else Role.OPERATOR)


def _secure(path: str, method: str, op: dict) -> None:
    """The security requirement and the 401/403/415/429 answers of one operation, from its role."""
    role = role_of(method, op)
    op["x-role"] = getattr(role, "value", role)
    responses = op["responses"]
    if role == ANONYMOUS:
        op["security"] = []
    elif op["operationId"] in BASIC_AUTH:
        op["security"] = [{"bearerAuth": []}, {"basicAuth": []}]
        responses.update(errors(401, 429, t401="No valid token, or a wrong username or password (`unauthorized`)."))
        responses["429"]["headers"] = {"Retry-After": RETRY_AFTER}
    else:
        responses.update(errors(401))
    if "401" in responses:
        responses["401"]["headers"] = {"WWW-Authenticate": WWW_AUTHENTICATE}
    if role not in (ANONYMOUS, Role.VIEWER):
        if "403" in responses:
            code = responses["403"]["content"][JSON]["schema"]["allOf"][1]["properties"]["error"]["properties"]["code"]
            code["enum"] = list(dict.fromkeys(code["enum"] + ["forbidden"]))
        else:
            responses.update(errors(403, t403=f"This needs the {role.value} role (`forbidden`)."))
    if role != ANONYMOUS and method in BODY_METHODS:
        media = next(iter(op["requestBody"]["content"])) if "requestBody" in op else JSON
        responses.update(errors(415, t415=f"A body that is not {media} (`unsupported_media_type`)."
                                + ("" if "requestBody" in op else " This operation takes none: send no body.")))
    op["responses"] = dict(sorted(responses.items()))


def _meta_paths() -> dict:
    return {
        "/ping": {"get": operation("ping", "meta", "Liveness", {"200": ok("Up.", ref("Ping"))})},
        "/readyz": {"get": operation("readyz", "meta", "Readiness", {
            "200": ok("Ready: every check is `ok`.", ref("Readiness")),
            "503": ok("Not ready: each failing check says why instead of `ok`.", ref("Readiness"))},
            description="May this process take traffic? The database and Redis answer (about 1 s each), the "
                        "schema is at the newest revision and a worker heartbeated lately.")},
        "/api/openapi.json": {"get": operation("openapi", "meta", "This document", {
            "200": ok("OpenAPI 3.1.", {"type": "object"})})},
        "/api/docs": {"get": operation("docs", "meta", "This document as a page", {
            "200": ok("HTML.", string(), HTML)})},
    }


INFO_DESCRIPTION = (
    "JSON in and out, no CSRF token needed. Every call but /ping, /readyz, /api/openapi.json and /api/docs needs "
    "`Authorization: Bearer <token>` (else 401 `unauthorized`, with `WWW-Authenticate`); each operation "
    "needs a role (viewer < operator < admin; too low: 403 `forbidden`). POST, PUT and PATCH bodies are "
    "`application/json` (uploads: `multipart/form-data`); any other type is refused (415 "
    "`unsupported_media_type`). Every error has the body "
    '`{"error": {"code", "message", "fields": {"<path>": ["<message>"]}}}`. '
    "A method a path does not offer answers 405 `method_not_allowed` (with `Allow`). Every answer carries "
    "`X-Request-ID`: the one sent (1..128 of `A-Za-z0-9._-`), else a new one; the logs of the request and "
    "of the jobs it queued carry it too."
)


@lru_cache(maxsize=1)
def _document() -> dict:
    paths: dict = {}
    for part in (_meta_paths, _workload_paths, _migration_paths, _run_paths, _test_file_paths,
                 _environment_paths, _event_paths, _account_paths):
        paths.update(part())
    for path, item in paths.items():
        for method, op in item.items():
            _secure(path, method, op)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Cutover API", "version": VERSION, "description": INFO_DESCRIPTION},
        "servers": [{"url": "/"}],
        "tags": [{"name": t} for t in ("workloads", "migrations", "runs", "test files", "environments", "events",
                                       "accounts", "audit", "meta")],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": SECURITY_SCHEMES,
            "schemas": schemas(),
            "responses": {"MethodNotAllowed": error(
                405, ["method_not_allowed"], "The path does not offer this method (`Allow` lists those it does).")},
        },
    }


def document() -> dict:
    """The OpenAPI 3.1 document (a fresh copy: callers may change it)."""
    return copy.deepcopy(_document())


# --- the page --------------------------------------------------------------------------------------

METHODS = ("get", "post", "put", "patch", "delete")


def type_text(schema: Schema | None) -> str:
    """A short, readable type: ``string | null``, ``array of Workload``, ``Error (invalid_state)``."""
    if not schema:
        return "any"
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "allOf" in schema:
        base = type_text(schema["allOf"][0])
        codes = schema["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"]
        return f"{base} ({', '.join(codes)})"
    if "anyOf" in schema:
        return " | ".join(type_text(s) for s in schema["anyOf"])
    if "enum" in schema:
        return " | ".join("null" if v is None else f'"{v}"' for v in schema["enum"])
    kind = schema.get("type", "object")
    kinds = kind if isinstance(kind, list) else [kind]
    text = " | ".join("array of " + type_text(schema.get("items")) if k == "array" else k for k in kinds)
    if schema.get("format"):
        text += f" ({schema['format']})"
    return text


def limits_text(schema: Schema) -> str:
    words = {"minimum": "≥ {}", "maximum": "≤ {}", "minLength": "length ≥ {}", "maxLength": "length ≤ {}",
             "minItems": "≥ {} items", "maxItems": "≤ {} items", "default": "default {}"}
    parts = [text.format("2^31 - 1" if schema[key] == MAX_ID else schema[key])
             for key, text in words.items() if key in schema]
    if schema.get("uniqueItems"):
        parts.append("unique")
    return ", ".join(parts)


def fields(schema: Schema, prefix: str = "") -> list[dict]:
    """The rows of a schema's table: nested inline objects flattened as ``target.cloud_type``."""
    rows = []
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        item = prop.get("items", {}) if prop.get("type") == "array" else {}
        rows.append({"name": prefix + name, "type": type_text(prop), "required": name in required,
                     "limits": limits_text(prop), "description": prop.get("description", "")})
        if prop.get("type") == "object" and "properties" in prop:
            rows += fields(prop, f"{prefix}{name}.")
        elif item.get("type") == "object" and "properties" in item:
            rows += fields(item, f"{prefix}{name}[].")
    return rows


def access_text(doc: dict, op: dict) -> str:
    """Who may call an operation, for people: ``Open`` or ``operator role · bearerAuth``."""
    security = op.get("security", doc.get("security", []))
    if not security:
        return "Open: no token needed."
    schemes = " or ".join(" + ".join(requirement) for requirement in security)
    return f"{op['x-role'].capitalize()} role or higher; `{schemes}`." if schemes else "Open: no token needed."


def _endpoints(doc: dict) -> list[dict]:
    endpoints = []
    for path, item in doc["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            body = None
            if "requestBody" in op:
                media, content = next(iter(op["requestBody"]["content"].items()))
                body = {"media": media, "type": type_text(content["schema"]),
                        "required": op["requestBody"].get("required", False)}
            responses = []
            for status, response in op["responses"].items():
                media, content = next(iter(response.get("content", {}).items()), (None, {}))
                responses.append({"status": status, "description": response["description"], "media": media,
                                  "type": type_text(content.get("schema")) if media else "",
                                  "headers": sorted(response.get("headers", {}))})
            endpoints.append({
                "method": method.upper(), "path": path, "id": op["operationId"], "tag": op["tags"][0],
                "summary": op["summary"], "description": op.get("description", ""), "body": body,
                "access": access_text(doc, op),
                "params": [{"name": p["name"], "in": p["in"], "required": p.get("required", False),
                            "type": type_text(p["schema"]), "limits": limits_text(p["schema"]),
                            "description": p.get("description", "")} for p in op.get("parameters", [])],
                "responses": responses,
            })
    return endpoints


def linker(names):
    """Type text as HTML, each schema name a link to its table further down."""
    pattern = re.compile(r"\b(" + "|".join(sorted(names, key=len, reverse=True)) + r")\b")

    def link(text: str) -> Markup:
        return Markup(pattern.sub(r'<a href="#schema-\1">\1</a>', str(escape(text))))

    return link


def prose(text: str) -> Markup:
    """A description as HTML: `code` spans become <code>, everything else is escaped."""
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape(text or ""))))


@bp.get("/openapi.json")
@public
def openapi_json():
    return document()


@bp.get("/docs")
@public
def docs():
    return render_template("api/docs.html", **_docs_page(_document()))


def _docs_page(doc: dict) -> dict:
    """What the readable API page shows: the endpoints by tag, the models, the security schemes."""
    endpoints = _endpoints(doc)
    tags = [t["name"] for t in doc["tags"]]
    groups = [(tag, [e for e in endpoints if e["tag"] == tag]) for tag in tags]
    models = [{"name": name, "type": type_text(s), "description": s.get("description", ""), "fields": fields(s),
               "closed": s.get("additionalProperties") is False} for name, s in doc["components"]["schemas"].items()]
    schemes = [{"name": name, **scheme} for name, scheme in doc["components"]["securitySchemes"].items()]
    return {"info": doc["info"], "version": doc["openapi"], "groups": groups, "models": models, "schemes": schemes,
            "schema_link": linker(doc["components"]["schemas"]), "prose": prose}
