"""The queue's arithmetic in plain Python: the median, when an environment frees, a run's start estimate, and
the words for a wait."""
from __future__ import annotations

import pytest

from webapp.domain import queueing


@pytest.mark.parametrize("values, expected", [
    ([], None), ([5], 5.0), ([3, 1, 2], 2.0), ([4, 1, 3, 2], 2.5), ((v for v in (10.0, 20.0)), 15.0),
    ([0, 0, 100], 0.0),
])
def test_the_median_of_no_values_is_none(values, expected):
    assert queueing.median(values) == expected


@pytest.mark.parametrize("typical, elapsed, hold_left, expected", [
    (200, None, 0, 0.0),      # idle: free now
    (200, 60, 0, 140.0),      # the current run has 140 s to go, typically
    (200, 0, 0, 200.0),       # given the environment, not started yet
    (200, 500, 0, 0.0),       # running longer than typical: it may end any moment, never a negative wait
    (None, 60, 0, 0.0),       # no history: nothing to go by for the current run
    (200, 60, 600, 600.0),    # held: not before the hold ends
    (200, None, 30, 30.0),
    (200, -5, 0, 200.0),      # a clock a little behind: no more than typical
])
def test_an_environment_frees_after_its_current_runs_typical_rest_or_its_hold(typical, elapsed, hold_left, expected):
    assert queueing.remaining(typical, elapsed, hold_left) == expected


@pytest.mark.parametrize("position, typical, frees_after, expected", [
    (None, 100, [0], None),            # not waiting
    (0, None, [], 0.0),                # given its environment: starting
    (1, 100, [40], 40.0),              # next: when the current run ends
    (3, 100, [40], 240.0),             # two runs of 100 s ahead of it, after that
    (1, 120, [90, 30], 30.0),          # a pool: the first of its environments to free
    (3, 120, [90, 30], 150.0),         # the two ahead share two environments: 30 + 2 · 120 / 2
    (2, None, [0], None),              # no finished run to go by
    (2, 100, [], None),                # no environment to run on (a pool no enabled environment carries)
    (2, 0.25, [0], 0.2),               # rounded to a tenth of a second
])
def test_the_estimate_of_a_runs_start(position, typical, frees_after, expected):
    assert queueing.estimate(position, typical, frees_after) == expected


@pytest.mark.parametrize("seconds, words", [
    (None, None), (0, "less than a minute"), (59.9, "less than a minute"), (60, "about 1 min"),
    (89, "about 1 min"), (91, "about 2 min"), (180, "about 3 min"), (340, "about 6 min"), (3540, "about 59 min"),
    (3570, "about 1 h"), (5400, "about 2 h"), (7 * 3600, "about 7 h"),
])
def test_a_wait_in_words(seconds, words):
    assert queueing.wait_words(seconds) == words
