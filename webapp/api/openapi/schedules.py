"""The schedules' operations and shapes (``webapp/api/schedules.py``, ``schedules.services.as_json``)."""
from __future__ import annotations

from ...domain.runs import ENVIRONMENT_IDS, MAX_FILES
from ...domain.schedules import CRON_MAX, NAME_MAX, PRIORITIES, RECENT_RUNS
from .builders import (NO_CONTENT, PAGING, Schema, array, boolean, created, enum, errors, integer, json_body, obj,
                       ok, operation, path_id, ref, string, timestamp)

CRON_TEXT = ("5 fields (minute hour day-of-month month day-of-week), read in UTC, e.g. `0 2 * * *`; "
             "an invalid or never-due expression is refused (422, field `cron`).")


def _fields(partial: bool) -> dict[str, Schema]:
    return {
        "name": string(minLength=1, maxLength=NAME_MAX, pattern=r"\S"),
        "cron": string(minLength=1, maxLength=CRON_MAX, description=CRON_TEXT),
        "test_files": array(string(minLength=1), minItems=1, maxItems=MAX_FILES, uniqueItems=True,
                            description="As a test run's: paths from GET /api/v1/test-files."),
        "environment_id": integer(minimum=ENVIRONMENT_IDS[0], maximum=ENVIRONMENT_IDS[-1],
                                  description="An enabled environment."),
        "pool": {"type": "null", "description": "Pools are not available yet: leave it out or send null."},
        "priority": enum(PRIORITIES, **({} if partial else {"default": "normal"}),
                         description="Stored; takes effect once run priorities exist."),
        "enabled": boolean(**({} if partial else {"default": True})),
    }


def schedule_schemas() -> dict[str, Schema]:
    return {
        "Schedule": obj({
            "id": integer(minimum=1), "name": string(), "owner": string(), "cron": string(),
            "test_files": array(string()), "environment_id": integer(nullable=True), "pool": string(nullable=True),
            "priority": enum(PRIORITIES), "enabled": boolean(),
            "next_due_at": timestamp(nullable=True, description="UTC; null while disabled."),
            "last_due_at": timestamp(nullable=True, description="The last due time handled (run or skip)."),
            "skipped": integer(minimum=0, description="Due times skipped because its previous run still waited."),
            "runs": array(integer(minimum=1), maxItems=RECENT_RUNS, description="Its last runs' ids, newest first."),
            "created_at": timestamp(), "updated_at": timestamp(),
        }),
        "ScheduleInput": obj(_fields(False), ["name", "cron", "test_files", "environment_id"]),
        "ScheduleChanges": obj(_fields(True), description="Only the fields sent change."),
        "SchedulePage": obj({"items": array(ref("Schedule")), "total": integer(minimum=0),
                             "page": integer(minimum=1), "per_page": integer(minimum=1)},
                            description="One page of schedules, newest first."),
    }


def schedule_paths() -> dict:
    sid = [path_id("schedule_id", "schedule")]
    owner = "Only its owner or an admin (`forbidden`)."
    return {
        "/api/v1/schedules": {
            "get": operation("listSchedules", "schedules", "List schedules", {
                "200": ok("One page of schedules, newest first.", ref("SchedulePage")), **errors(422)},
                params=PAGING),
            "post": operation("createSchedule", "schedules", "Create a schedule", {
                "201": created("The new schedule, owned by the caller.", ref("Schedule")),
                **errors(400, 422)}, body=json_body(ref("ScheduleInput")), description=(
                    "Starts a test run as its owner at each due time. At most one run of a schedule waits at a "
                    "time: a due time that finds the previous run still queued is skipped (`skipped` + 1). After "
                    "downtime it starts one run, not one per missed due time.")),
        },
        "/api/v1/schedules/{schedule_id}": {
            "get": operation("getSchedule", "schedules", "Read a schedule", {
                "200": ok("The schedule.", ref("Schedule")), **errors(404)}, params=sid),
            "patch": operation("updateSchedule", "schedules", "Change a schedule", {
                "200": ok("The schedule; a new cron or enabling recomputes `next_due_at` from now.",
                          ref("Schedule")), **errors(400, 403, 404, 422, t403=owner)},
                params=sid, body=json_body(ref("ScheduleChanges"))),
            "delete": operation("deleteSchedule", "schedules", "Delete a schedule", {
                "204": NO_CONTENT, **errors(403, 404, t403=owner)}, params=sid),
        },
    }
