"""The operations, path by path, with their parameters, bodies and answers."""
from __future__ import annotations

from ...domain.events import EventStatus
from ...domain.runs import ENVIRONMENT_IDS, RunState
from .builders import (MULTIPART, TEXT, XML, NO_CONTENT, PAGING, array, created, enum, errors, integer, json_body, ok,
                       operation, path_id, query, ref, string)


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
                         c422=["system_volume_required", "preflight_failed", "validation_error"],
                         t422="A preflight check failed (`preflight_failed`, `error.checks` lists the failed ones; "
                              "the migration is left as it was), C:\\ is not selected (`system_volume_required`: "
                              "the migration ends `error`), `requested_by` is not the signed-in account, or (a "
                              "retry of its validation) the validation's environment is disabled "
                              "(`validation.environment_id`).")},
                params=[mid], body=json_body(ref("MigrationRunRequest"), required=False),
                description="The signed-in account is told when it ends (`requested_by` may only name it). With a "
                            "`validation`, the copy is followed by its test run (`phase` validating), and the "
                            "migration ends `success` only if that run does. Retrying a migration that ended "
                            "`error` while validating runs only the validation again. Runs the preflight checks first (see "
                            "`preflightMigration`)."),
        },
        "/api/v1/migrations/{migration_id}/preflight": {
            "post": operation("preflightMigration", "migrations", "Check a migration before running it", {
                "200": ok("Every check, passed or not (`ok`: all passed).", ref("Preflight")), **errors(404)},
                params=[mid],
                description="Changes nothing. The checks Run performs: `system_volume` (C:\\ selected), `volumes` "
                            "(each selected volume is still one of the source workload's), `credentials` (the "
                            "stored passwords can be read with the current key), `exclusive_source` (no other "
                            "migration of the same source is running), `validation` (its test files exist and its "
                            "environment exists and is enabled; ok with no validation run)."),
        },
        "/api/v1/migrations/{migration_id}/status": {
            "get": operation("getMigrationStatus", "migrations", "A migration's state and progress", {
                "200": ok("For polling.", ref("MigrationStatus")), **errors(404)}, params=[mid]),
        },
        "/api/v1/migrations/{migration_id}/cancel": {
            "post": operation("cancelMigration", "migrations", "Cancel a running migration", {
                "202": ok("Cancelling: it ends `error` (`cancelled`) within 2 s; while validating its run is "
                          "cancelled (`validation failed: run #N (cancelled)`).", ref("Migration")),
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
            "patch": operation("updateEnvironment", "environments", "Rename, describe, enable or disable; set variables, secrets, setup and teardown", {
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
