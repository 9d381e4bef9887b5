"""The shapes of a run's test results (``runs/results.py``): each test, and the run's counts."""
from __future__ import annotations

from ...domain.results import MESSAGE_MAX, NODEID_MAX, OUTCOMES, Summary
from .builders import boolean, enum, integer, number, obj, string

RUN_SUMMARY = obj({name: integer(minimum=0) for name in Summary().as_dict()},
                  description="How many tests, and how many of each outcome (errors: outcome error).")
TEST_RESULT = obj({
    "nodeid": string(maxLength=NODEID_MAX), "outcome": enum(list(OUTCOMES)),
    "duration": number(minimum=0, description="seconds: setup + call + teardown, from pytest's report"),
    "message": string(nullable=True, maxLength=MESSAGE_MAX, description="The failure, error, skip or xfail reason "
                      "(first line); null when passed."),
    "details": string(nullable=True, description="The traceback, at most 64 KiB then a line "
                      "`[details truncated at 64 KiB]`. Left out by the runs list."),
    "file": string(nullable=True, examples=["uploads/team/test_x.py"]),
    "line": integer(nullable=True, minimum=1, description="The test's line in its file, from 1."),
    "flaky": boolean(description="Its recent history flips between pass and fail. Left out by the runs list."),
    "new_failure": boolean(description="Failed here, passed in the previous run on this environment. Left out by "
                           "the runs list.")}, ["nodeid", "outcome", "duration", "message", "file", "line"])
