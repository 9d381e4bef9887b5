"""The rule of comparing two runs (webapp/domain/compare.py): plain Python, no app."""
from __future__ import annotations

import pytest

from webapp.domain.compare import BUCKETS, bucket, compare, is_slower

OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")


@pytest.mark.parametrize("before, after, expected", [
    ("failed", "passed", "fixed"), ("error", "passed", "fixed"),
    ("passed", "failed", "new_failures"), ("passed", "error", "new_failures"),
    ("failed", "failed", "still_failing"), ("failed", "error", "still_failing"), ("error", "failed", "still_failing"),
    (None, "failed", "added"), (None, "passed", "added"), (None, "skipped", "added"),
    ("passed", None, "removed"), ("failed", None, "removed"),
    ("passed", "passed", None), ("skipped", "failed", None), ("failed", "skipped", None),
    ("failed", "xpassed", None), ("failed", "xfailed", None), ("xfailed", "failed", None),
    ("passed", "skipped", None), ("passed", "xfailed", None), ("xpassed", "error", None),
    (None, None, None),
])
def test_each_pair_of_outcomes_falls_in_at_most_one_bucket(before, after, expected):
    assert bucket(before, after) == expected


def test_every_pair_of_outcomes_is_covered_and_only_failed_and_error_count_as_failing():
    failing = {"failed", "error"}
    for before in OUTCOMES:
        for after in OUTCOMES:
            expected = ("still_failing" if before in failing and after in failing
                        else "fixed" if before in failing and after == "passed"
                        else "new_failures" if before == "passed" and after in failing else None)
            assert bucket(before, after) == expected, (before, after)


@pytest.mark.parametrize("before, after, slower", [
    (0.2, 0.3, True),      # exactly 1.5× and exactly 0.1 s: both edges count (no float rounding trap)
    (0.2, 0.298, False),   # 1.49×
    (1.0, 1.49, False),    # 1.49×, 0.49 s
    (1.0, 1.5, True),      # 1.5×
    (0.1, 0.19, False),    # 1.9× but only 0.09 s
    (0.1, 0.2, True),      # 2× and 0.1 s
    (0.0, 0.09, False),    # from nothing, but only 0.09 s
    (0.0, 0.1, True),
    (5.0, 4.0, False),     # faster
    (2.0, 2.0, False),
    (None, 0.5, True),     # an unknown duration counts as 0
])
def test_slower_needs_one_and_a_half_times_and_a_tenth_of_a_second_more(before, after, slower):
    assert is_slower(before, after) is slower


def test_compare_sorts_each_list_and_the_slower_by_slowdown():
    before = {"t::z": ("failed", 0.1), "t::a": ("failed", 0.1), "t::new": ("passed", 1.0), "t::still": ("error", 0.0),
              "t::gone": ("passed", 0.1), "t::slow": ("passed", 0.2), "t::slowest": ("skipped", 1.0),
              "t::same": ("passed", 0.5)}
    after = {"t::z": ("passed", 0.1), "t::a": ("passed", 0.1), "t::new": ("failed", 1.0), "t::still": ("failed", 0.0),
             "t::b-added": ("failed", 9.0), "t::a-added": ("passed", 0.0), "t::slow": ("passed", 0.3456),
             "t::slowest": ("skipped", 3.0), "t::same": ("passed", 0.5)}
    found = compare(before, after)
    assert list(found) == list(BUCKETS)
    assert found["fixed"] == ["t::a", "t::z"]
    assert found["new_failures"] == ["t::new"]
    assert found["still_failing"] == ["t::still"]
    assert found["added"] == ["t::a-added", "t::b-added"]  # in after only: never new failures nor slower
    assert found["removed"] == ["t::gone"]
    assert found["slower"] == [{"nodeid": "t::slowest", "before": 1.0, "after": 3.0},
                               {"nodeid": "t::slow", "before": 0.2, "after": 0.346}]


def test_two_empty_runs_and_a_run_with_itself_have_nothing_to_report():
    assert compare({}, {}) == {name: [] for name in BUCKETS}
    same = {"t::a": ("failed", 1.0), "t::b": ("passed", 2.0)}
    assert compare(same, same) == {name: ["t::a"] if name == "still_failing" else [] for name in BUCKETS}
