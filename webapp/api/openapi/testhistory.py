"""The tests' operations and shapes (``webapp/api/tests.py``, ``testhistory.services``)."""
from __future__ import annotations

from ...domain.runs import ENVIRONMENT_IDS
from ...domain.testhistory import FLAKY_THRESHOLD, HISTORY_LIMIT, MAX_HISTORY_LIMIT, OUTCOMES, SORTS
from ...inputs.testhistory import Q_MAX
from .builders import (PAGING, Schema, array, enum, errors, integer, number, obj, ok, operation, query, ref, string,
                       timestamp)


def test_schemas() -> dict[str, Schema]:
    return {
        "TestSummary": obj({
            "nodeid": string(), "runs": integer(minimum=0), "passed": integer(minimum=0),
            "failed": integer(minimum=0), "skipped": integer(minimum=0),
            "pass_rate": number(nullable=True, minimum=0, maximum=1,
                                description="passed / (passed + failed); null when it never passed nor failed."),
            "flaky_score": number(minimum=0, maximum=1, description=(
                "Over its last 30 results, skips and xfails left out: the share of consecutive results that flip "
                f"between pass (passed, xpassed) and fail (failed, error). Flaky at {FLAKY_THRESHOLD} or more.")),
            "last_outcome": enum(OUTCOMES, nullable=True), "last_run_id": integer(nullable=True, minimum=1),
            "median_duration": number(nullable=True, minimum=0,
                                      description="Seconds: the median of its last 30 results that ran."),
        }, description="A test, by nodeid. passed counts xpassed too, failed counts error, skipped counts xfailed."),
        "TestPage": obj({"items": array(ref("TestSummary")), "total": integer(minimum=0), "page": integer(minimum=1),
                         "per_page": integer(minimum=1)}, description="One page of tests."),
        "TestHistoryItem": obj({
            "run_id": integer(minimum=1), "environment_id": integer(minimum=1), "outcome": enum(OUTCOMES),
            "duration": number(minimum=0, description="Seconds."),
            "message": string(nullable=True, description="The failure, error or skip reason's first line."),
            "finished_at": timestamp(nullable=True, description="The run's end."),
        }),
        "TestHistory": obj({"items": array(ref("TestHistoryItem"))}, description="Newest first."),
    }


def test_paths() -> dict:
    nodeid = {"name": "nodeid", "in": "path", "required": True, "schema": string(minLength=1, maxLength=1000),
              "description": "The test's pytest nodeid, e.g. `uploads/smoke/test_login.py::test_ok[a b]` (its "
                             "slashes may be sent as they are; quote `?`, `#`, `%` and spaces)."}
    return {
        "/api/v1/tests": {
            "get": operation("listTests", "tests", "List tests", {
                "200": ok("One page of tests.", ref("TestPage")), **errors(422)}, params=PAGING + [
                    query("q", string(maxLength=Q_MAX), "Only tests whose nodeid has this in it (any case)."),
                    query("flaky", enum(["true", "false"]), "Only flaky tests (true) or only the others (false)."),
                    query("sort", enum(SORTS, default="nodeid"), (
                        "nodeid (default), flaky (highest score first), slowest (longest median first) or "
                        "failing (most failures first; only tests that ever failed).")),
                ]),
        },
        "/api/v1/tests/{nodeid}/history": {
            "get": operation("getTestHistory", "tests", "A test's history", {
                "200": ok("Its latest results, newest first.", ref("TestHistory")),
                **errors(404, 422, t404="No run recorded this test (`not_found`).")}, params=[
                    nodeid,
                    query("environment_id", integer(minimum=ENVIRONMENT_IDS[0], maximum=ENVIRONMENT_IDS[-1]),
                          "Only its results on this environment."),
                    query("limit", integer(minimum=1, maximum=MAX_HISTORY_LIMIT, default=HISTORY_LIMIT),
                          "How many results at most."),
                ]),
        },
    }
