"""The comparison of two runs (``webapp/api/runs.py`` compare_runs, ``runs.compare.compare``)."""
from __future__ import annotations

from .builders import Schema, array, errors, number, obj, ok, operation, path_id, ref, string

NODEIDS = "Test nodeids, sorted."


def compare_schemas() -> dict[str, Schema]:
    return {
        "RunComparison": obj({
            "fixed": array(string(), description="Failed or error in the before run, passed in the after run. "
                                                 + NODEIDS),
            "new_failures": array(string(), description=(
                "Passed in the before run, failed or error in the after run (a failing test the before run did "
                "not have is in `added`). " + NODEIDS)),
            "still_failing": array(string(), description="Failed or error in both. " + NODEIDS),
            "added": array(string(), description="In the after run only, whatever its outcome. " + NODEIDS),
            "removed": array(string(), description="In the before run only. " + NODEIDS),
            "slower": array(obj({
                "nodeid": string(),
                "before": number(minimum=0, description="Seconds in the before run, rounded to 3 decimals."),
                "after": number(minimum=0, description="Seconds in the after run, rounded to 3 decimals."),
            }), description=(
                "In both runs, and after ≥ 1.5 × before and after − before ≥ 0.1 s (compared in whole "
                "milliseconds); the largest slowdown first.")),
        }, description="Other changes (e.g. skipped → failed) are in none of the first three lists."),
    }


def compare_paths() -> dict:
    return {
        "/api/v1/runs/{before_id}/compare/{after_id}": {
            "get": operation("compareRuns", "runs", "Compare two runs' test results", {
                "200": ok("What changed from the before run to the after run.", ref("RunComparison")),
                **errors(404, t404="No such run (`not_found`); the message names the id.")},
                params=[path_id("before_id", "before (earlier) run"), path_id("after_id", "after (later) run")],
                description=(
                    "`before_id` is the run compared from (usually the earlier), `after_id` the run compared to; "
                    "the order given decides, whatever the ids. Any two runs compare (other files or another "
                    "environment too); a run not finished yet compares with the results it has recorded so far. "
                    "The results come from each test's recorded result, or, for a run that ended before those "
                    "were recorded, from the results it kept (`tests`). The run page links to the comparison "
                    "with the previous finished run of the same files on the same environment.")),
        },
    }
