"""The waves' operations and shapes (``webapp/api/waves.py``, ``waves.services.as_json``)."""
from __future__ import annotations

from ...domain.waves import MAX_MEMBERS, MAX_PARALLEL, MIN_PARALLEL, NAME_MAX, WaveState
from ...inputs import MAX_ID
from .builders import (PAGING, Schema, array, boolean, created, enum, errors, integer, json_body, obj, ok, operation,
                       path_id, ref, string, timestamp)

COUNTED = ("not_started", "running", "success", "error")


def wave_schemas() -> dict[str, Schema]:
    return {
        "Wave": obj({
            "id": integer(minimum=1), "name": string(), "state": enum(WaveState),
            "max_parallel": integer(minimum=MIN_PARALLEL, maximum=MAX_PARALLEL),
            "start_at": timestamp(nullable=True, description="UTC; null: it started (or starts) at once."),
            "stop_on_error": boolean(),
            "counts": obj({n: integer(minimum=0) for n in COUNTED}, description=(
                "Members by state: not yet started by the wave → not_started, else its migration's state.")),
            "migrations": array(integer(minimum=1), description="The members' migration ids, in starting order."),
            "created_at": timestamp(), "started_at": timestamp(nullable=True), "finished_at": timestamp(nullable=True),
        }),
        "WaveInput": obj({
            "name": string(minLength=1, maxLength=NAME_MAX, pattern=r"\S"),
            "migration_ids": array(integer(minimum=1, maximum=MAX_ID), minItems=1, maxItems=MAX_MEMBERS,
                                   uniqueItems=True, description=(
                                       "Started in this order. Each not_started or error, and in no unfinished "
                                       "wave.")),
            "max_parallel": integer(minimum=MIN_PARALLEL, maximum=MAX_PARALLEL, default=1),
            "start_at": string(nullable=True, description=(
                "ISO 8601 date and time; without a timezone it is taken as UTC. null or past: at once.")),
            "stop_on_error": boolean(default=False),
        }, ["name", "migration_ids"]),
        "WavePage": obj({"items": array(ref("Wave")), "total": integer(minimum=0), "page": integer(minimum=1),
                         "per_page": integer(minimum=1)}, description="One page of waves, newest first."),
    }


def _action(op_id: str, summary: str, text: str, states: str) -> dict:
    return {"post": operation(op_id, "waves", summary, {
        "200": ok(text, ref("Wave")), **errors(404, 409, t409=f"Only a wave that is {states} (`invalid_state`).")},
        params=[path_id("wave_id", "wave")])}


def wave_paths() -> dict:
    return {
        "/api/v1/waves": {
            "get": operation("listWaves", "waves", "List waves", {
                "200": ok("One page of waves, newest first.", ref("WavePage")), **errors(422)}, params=PAGING),
            "post": operation("createWave", "waves", "Create a wave", {
                "201": created("The new wave: `scheduled`, or `running` when it starts at once.", ref("Wave")),
                **errors(400, 413, 422, t422=(
                    "Invalid input; `fields` says which and why. Under `migration_ids`: no such migration, already "
                    "migrated (success), running, or in another unfinished wave (named)."))},
                body=json_body(ref("WaveInput")),
                description="Runs the migrations in order, at most `max_parallel` at a time, from `start_at`; "
                            "with `stop_on_error` no new one starts after the first error. The creator is told "
                            "when the wave ends."),
        },
        "/api/v1/waves/{wave_id}": {
            "get": operation("getWave", "waves", "Read a wave", {
                "200": ok("The wave and its counts.", ref("Wave")), **errors(404)},
                params=[path_id("wave_id", "wave")]),
        },
        "/api/v1/waves/{wave_id}/pause": _action(
            "pauseWave", "Pause a wave", "Paused: no new starts; running ones finish.", "scheduled or running"),
        "/api/v1/waves/{wave_id}/resume": _action(
            "resumeWave", "Resume a paused wave", "Running again (or scheduled, if it never started).", "paused"),
        "/api/v1/waves/{wave_id}/cancel": _action(
            "cancelWave", "Cancel a wave", "Cancelled: its running migrations are cancelled; those never started "
            "stay not_started.", "scheduled, running or paused"),
    }
