"""The rules of a test's history (webapp/domain/testhistory.py): flaky score, pass rate, median, new failure."""
from __future__ import annotations

import pytest

from webapp.domain import testhistory as rules


@pytest.mark.parametrize("recent, score, flaky", [
    ("PFPFPFPFPF", 1.0, True),          # alternating: every step flips
    ("P" * 30, 0.0, False),             # stable pass
    ("F" * 30, 0.0, False),             # stable fail: broken, not flaky
    ("PPPPF", 0.25, True),              # 1 flip in 4 steps: exactly the threshold
    ("PPPPPF", 0.2, True),              # 1 flip in 5 steps
    ("PPPPPPF", round(1 / 6, 4), False),  # 1 flip in 6 steps: under 0.2
    ("PSFSPSF", 1.0, True),             # skips ignored: P F P F
    ("PxFxP", 1.0, True),               # xfailed ignored like a skip
    ("PXPX", 0.0, False),               # xpassed counts as a pass
    ("PEPE", 1.0, True),                # error counts as a fail
    ("SSSS", 0.0, False), ("", 0.0, False), ("P", 0.0, False), ("PSSS", 0.0, False),
])
def test_flaky_score_is_the_share_of_flips_between_pass_and_fail(recent, score, flaky):
    assert rules.flaky_score(recent) == score
    assert rules.is_flaky(recent) is flaky


def test_only_the_last_thirty_results_count():
    old_flips = "PF" * 20  # 40 results, flipping
    assert rules.flaky_score(old_flips + "P" * 30) == 0.0
    assert rules.flaky_score(old_flips + "P" * 29) == round(1 / 29, 4)


@pytest.mark.parametrize("passed, failed, rate", [(0, 0, None), (3, 1, 0.75), (0, 2, 0.0), (5, 0, 1.0)])
def test_pass_rate(passed, failed, rate):
    assert rules.pass_rate(passed, failed) == rate


def test_median_duration_leaves_out_skips():
    assert rules.median_duration("PSF", [1.0, 0.0, 3.0]) == 2.0
    assert rules.median_duration("SS", [0.0, 0.0]) is None
    assert rules.median_duration("", []) is None


@pytest.mark.parametrize("outcome, previous, new", [
    ("failed", "passed", True), ("error", "passed", True), ("failed", "xpassed", True),
    ("failed", "failed", False),  # the next failure after a failure is not new
    ("failed", None, False),      # never ran before on this environment
    ("passed", "passed", False), ("skipped", "passed", False), ("failed", "error", False),
])
def test_a_new_failure_failed_now_and_passed_the_time_before(outcome, previous, new):
    assert rules.is_new_failure(outcome, previous) is new


def test_a_summary_counts_each_outcome_and_keeps_the_last_thirty():
    summary = rules.Summary("t.py::x")
    for i in range(40):
        summary.add("passed" if i % 2 else "failed", i / 10, i + 1)
    summary.add_all([("skipped", 0.0, 41, None), ("xfailed", 0.0, 42, None), ("xpassed", 0.5, 43, None),
                     ("error", 0.1, 44, None)])
    row = summary.row()
    assert (row["runs"], row["passed"], row["failed"], row["skipped"]) == (44, 21, 21, 2)
    assert len(row["recent"]) == 30 and len(row["durations"]) == 30 and row["recent"].endswith("SxXE")
    assert row["pass_rate"] == 0.5 and row["last_outcome"] == "error" and row["last_run_id"] == 44
    assert row["flaky_score"] == rules.flaky_score(row["recent"]) and row["flaky_score"] > 0.9
    assert row["durations"][-1] == 0.1


def test_an_unknown_outcome_counts_as_a_skip():
    assert rules.letter("weird") == "S"
