"""Comparing two runs' test results: which tests were fixed, newly fail, still fail, came, went or got slower.

Plain Python: ``webapp.runs.compare`` reads the two runs' results and hands them here as
``{nodeid: (outcome, duration in seconds)}``. ``before`` is the earlier run (a in ``/runs/<a>/compare/<b>``),
``after`` the later one (b); the order given decides, whatever the ids.

- ``fixed``: failed or error before, passed after;
- ``new_failures``: passed before, failed or error after (a test absent before that fails is ``added``);
- ``still_failing``: failed or error in both;
- ``added``: only after; ``removed``: only before (whatever their outcome);
- ``slower``: in both, and after ≥ 1.5 × before and after − before ≥ 0.1 s, compared in whole milliseconds
  (durations are shown rounded to 3 decimals; so 0.2 → 0.3 s is slower, 0.2 → 0.299 s is not).

Other changes (e.g. skipped → failed, failed → skipped, passed → xfailed) are in none of the first three lists.
Every list of nodeids is sorted; ``slower`` is sorted by the slowdown, largest first (then by nodeid).
"""
from __future__ import annotations

from typing import Mapping

FAILING = frozenset({"failed", "error"})
PASSING = frozenset({"passed"})
SLOWER_RATIO = (3, 2)  # after / before ≥ 3 / 2 (1.5×), in integers so that the edge is exact
SLOWER_MIN_MS = 100  # and at least 0.1 s slower
BUCKETS = ("fixed", "new_failures", "still_failing", "added", "removed", "slower")

Results = Mapping[str, tuple[str, float]]


def _ms(seconds: float | None) -> int:
    return round((seconds or 0.0) * 1000)


def is_slower(before: float | None, after: float | None) -> bool:
    """after ≥ 1.5 × before and after − before ≥ 0.1 s, both in whole milliseconds."""
    b, a = _ms(before), _ms(after)
    num, den = SLOWER_RATIO
    return a * den >= b * num and a - b >= SLOWER_MIN_MS


def bucket(before: str | None, after: str | None) -> str | None:
    """The outcome bucket of one test from its outcome before and after (None: absent); None: no bucket."""
    if before is None:
        return "added" if after is not None else None
    if after is None:
        return "removed"
    if before in FAILING:
        return "still_failing" if after in FAILING else "fixed" if after in PASSING else None
    if before in PASSING and after in FAILING:
        return "new_failures"
    return None


def compare(before: Results, after: Results) -> dict[str, list]:
    """The six lists (see the module's docstring) of two runs' results."""
    found: dict[str, list] = {name: [] for name in BUCKETS}
    for nodeid in before.keys() | after.keys():
        old, new = before.get(nodeid), after.get(nodeid)
        name = bucket(old and old[0], new and new[0])
        if name:
            found[name].append(nodeid)
        if old and new and is_slower(old[1], new[1]):
            found["slower"].append({"nodeid": nodeid, "before": round(old[1] or 0.0, 3),
                                    "after": round(new[1] or 0.0, 3)})
    for name in BUCKETS[:-1]:
        found[name].sort()
    found["slower"].sort(key=lambda s: (-(_ms(s["after"]) - _ms(s["before"])), s["nodeid"]))
    return found
