"""The shapes (component schemas) of what the API takes and answers; they follow the services' ``as_json``."""
from __future__ import annotations

from ...domain.accounts import (DISPLAY_NAME_MAX, MAX_TOKEN_DAYS, PASSWORD_MAX, PASSWORD_MIN, Role,
                                TOKEN_NAME_MAX, USERNAME_PATTERN)
from .holds import HOLD
from .queueing import ESTIMATE, POSITION, QUEUE, WAIT_P50
from ...domain.environments import DESCRIPTION_MAX as ENVIRONMENT_DESCRIPTION_MAX, NAME_MAX
from ...domain.events import DESCRIPTION_MAX, EventSource, EventStatus, USER_ID_MAX
from ...domain.migration import CloudType, MigrationState
from ...domain.preflight import NAMES as PREFLIGHT_CHECKS
from ...domain.runs import ENVIRONMENT_IDS, MAX_FILES, RunState, USERNAME_MAX
from ...inputs import MAX_ID, MAX_PER_PAGE
from ...health import HEARTBEAT_SECONDS
from ...version import VERSION
from .results import RUN_SUMMARY, TEST_RESULT
from .stages import NAMES as STAGE_FIELDS
from .builders import (Schema, array, boolean, described, enum, integer, nullable, number, obj, ref, string,
                       timestamp)


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


PHASE = enum(["copying", "validating"], nullable=True, description=(
    "null before the first run; copying; validating once copied, while its validation run decides (kept when it "
    "ends: a Retry of a migration that ended in error while validating only runs the validation again)."))


def _validation_in() -> Schema:
    schema = obj({
        "test_files": array(string(minLength=1, examples=["sample_tests/validation/test_target.py"]), minItems=1,
                            maxItems=MAX_FILES, uniqueItems=True, description="Paths from GET /api/v1/test-files."),
        "environment_id": integer(minimum=ENVIRONMENT_IDS[0], maximum=ENVIRONMENT_IDS[-1],
                                  description="An enabled environment (a string of digits is accepted too)."),
    }, ["test_files", "environment_id"], closed=False, description=(
        "A test run that must pass on the target once copied (the same rules as a run's files and environment; "
        "errors keyed validation.test_files, validation.environment_id); null removes it. Its pytest gets "
        "CUTOVER_MIGRATION_ID, CUTOVER_TARGET_IP, CUTOVER_TARGET_CLOUD and CUTOVER_TARGET_VOLUMES (JSON list of "
        "{name, size}), never a credential. run_id and state may be sent back unchanged."))
    return {**schema, "type": ["object", "null"]}


def _migration_in(update: bool) -> Schema:
    target = obj({"cloud_type": enum(CloudType), "cloud_credentials": _credentials_in(keep=update)},
                 [] if update else ["cloud_type", "cloud_credentials"], closed=False)
    properties = {
        "source_id": integer(minimum=1, maximum=MAX_ID, description="The source workload's id"
                             + (": never changes, only its current value may be sent." if update else ".")),
        "selected_mount_points": array(string(examples=["C:\\"]), minItems=1, uniqueItems=True,
                                       description="Names of the source's volumes to copy; C:\\ is needed to run."),
        "target": target,
        "validation": _validation_in(),
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
            "checks": described(array(ref("PreflightCheck")), "Only when a run is refused by its preflight "
                                "(`preflight_failed`): the failed checks."),
        }, ["code", "message", "fields"])}),
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
            "state": enum(MigrationState), "phase": PHASE, "error": string(nullable=True, description=(
                "Why it ended in error, e.g. `validation failed: run #12 (2 failed)` or `validation failed: run #12 "
                "(cancelled)`.")),
            "progress": ref("Progress"), "validation": described(nullable(ref("Validation")), "null: none."),
            "requested_by": string(nullable=True), "created_at": timestamp(), "started_at": timestamp(nullable=True),
            "finished_at": timestamp(nullable=True),
        }),
        "Validation": obj({
            "test_files": array(string()), "environment_id": integer(minimum=1),
            "run_id": integer(nullable=True, minimum=1, description="The latest validation run (null before)."),
            "state": enum(RunState, nullable=True, description="That run's state: success ends the migration "
                                                              "success, any other final state ends it error."),
        }, description="The test run the target must pass before the migration succeeds."),
        "MigrationInput": _migration_in(update=False),
        "MigrationUpdate": _migration_in(update=True),
        "MigrationRunRequest": obj({"requested_by": string(
            nullable=True, maxLength=128, description=(
                "Optional: who is notified when it ends is always the signed-in account. Leave it out or send "
                "your own username; any other name is refused (422)."))},
            [], closed=False),
        "MigrationStatus": obj({"state": enum(MigrationState), "phase": PHASE, "finished": boolean(),
                                "progress": ref("Progress"), "error": string(nullable=True)}),
        "MigrationPage": _page("Migration", "migrations, newest first"),
        "PreflightCheck": obj({
            "name": string(description="Stable: " + ", ".join(f"`{n}`" for n in PREFLIGHT_CHECKS) + "."),
            "ok": boolean(), "message": string(description="What is wrong (or right), in words to act on.")}),
        "Preflight": obj({"ok": boolean(description="Every check passed: Run will not be refused by them."),
                          "checks": array(ref("PreflightCheck"))}),
        "RunSummary": RUN_SUMMARY, "TestResult": TEST_RESULT,
        "Run": obj({
            "id": integer(minimum=1), "username": string(), "environment_id": integer(minimum=1),
            "test_files": array(string()), "state": enum(RunState),
            "queue_position": POSITION, "estimated_start_seconds": ESTIMATE,
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
            "migration_id": integer(nullable=True, minimum=1, description="The migration this run validates "
                                                                          "(null: a plain run)."),
            "link": string(nullable=True, examples=["/migrations/3"], description="That migration's page."),
            **STAGE_FIELDS,
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
            "description": string(), "enabled": boolean(),
            "status": enum(["idle", "busy"]), "current_run_id": integer(nullable=True, minimum=1),
            "queue": array(integer(minimum=1), description=QUEUE), "wait_p50_seconds": WAIT_P50, "hold": HOLD,
        }),
        "EnvironmentPatch": obj({
            "name": string(minLength=1, maxLength=NAME_MAX, pattern=r"\S"),
            "description": string(maxLength=ENVIRONMENT_DESCRIPTION_MAX),
            "enabled": boolean(description="A disabled environment accepts no new runs."),
        }, [], description="Any other field is refused (422). Admins only."),
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
