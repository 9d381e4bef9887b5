"""The shape of a run's setup and teardown stages (issue 14, ``runs/pipeline.py``, kept in ``runs.stages``)."""
from __future__ import annotations

from ...domain import stages
from .builders import Schema, array, enum, integer, number, obj, ref, string
from .results import RUN_SUMMARY

STAGE_STATES = [stages.PASSED, stages.FAILED, stages.ERROR, stages.TIMEOUT, stages.CANCELLED]


def stage_schemas() -> dict[str, Schema]:
    return {
        "RunStage": obj({
            "file": string(examples=["uploads/env/test_reset.py"]), "state": enum(STAGE_STATES),
            "exit_code": integer(nullable=True), "summary": RUN_SUMMARY,
            "duration": number(minimum=0, description="seconds"),
            "tests": array(obj({"nodeid": string(), "outcome": string(), "duration": number(minimum=0),
                                "message": string(nullable=True)}), description="At most 200, secrets masked."),
        }),
        "RunStages": obj({"setup": ref("RunStage"), "teardown": ref("RunStage")}, [], description=(
            "The environment's setup and teardown around this run, apart from its own tests: `{}` when it has "
            "none (or until they run). A setup that did not pass ends the run `error` \"setup failed\"; a "
            "teardown that did not pass holds the environment until an admin releases it.")),
    }


NAMES = {
    "variables": array(string(), description="The names of the environment's variables the run was given "
                                             "(CUTOVER_ENVIRONMENT_ID/NAME and CUTOVER_RUN_ID always are)."),
    "secrets": array(string(), description="The names of the secrets it was given; never a value (masked as "
                                           "`[masked]` in its log, results and JUnit XML)."),
    "stages": ref("RunStages"),
}


def amend_environment_schemas(schemas: dict[str, Schema]) -> None:
    """An environment's variables, secret names and setup/teardown files (issue 14), read and PATCHed."""
    env, patch = schemas["Environment"], schemas["EnvironmentPatch"]
    env["properties"].update({
        "variables": {"type": "object", "additionalProperties": string(),
                      "description": "NAME → value, given to every run here as environment variables."},
        "secrets": array(string(), description="Secret names only: values are write-only."),
        "setup": string(nullable=True, description="Test file run before each run's tests."),
        "teardown": string(nullable=True, description="Test file run after each run, whatever its outcome."),
    })
    env["required"] += ["variables", "secrets", "setup", "teardown"]
    patch["properties"].update({
        "variables": {"type": "object", "additionalProperties": string(nullable=True),
                      "description": "NAME → value (null deletes); names not sent stay. Names [A-Z_][A-Z0-9_]{0,63}, "
                                     "not reserved (PATH, PYTHON*, CUTOVER_*, LD_*, ...); values up to 4 KiB; at most 50."},
        "secrets": {"type": "object", "additionalProperties": string(nullable=True),
                    "description": "NAME → value (null deletes), write-only: never returned, masked in logs."},
        "setup": string(nullable=True, description="An available test file, or null for none."),
        "teardown": string(nullable=True, description="An available test file, or null for none."),
    })
