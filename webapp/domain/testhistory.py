"""A test's history, as plain rules: the outcome letters kept in ``test_stats.recent``, the flaky score, the
pass rate, the median duration, and how one more result changes a test's summary. No Flask, no SQL.

How each outcome counts:

| outcome  | letter | counts as | in the flaky score |
|----------|--------|-----------|--------------------|
| passed   | P      | passed    | a pass             |
| xpassed  | X      | passed    | a pass (the test ran and its assertions held) |
| failed   | F      | failed    | a fail             |
| error    | E      | failed    | a fail (a broken fixture breaks the test alike) |
| skipped  | S      | skipped   | ignored            |
| xfailed  | x      | skipped   | ignored (an expected failure says nothing new) |
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

WINDOW = 30  # results kept per test for the flaky score and the median duration
FLAKY_THRESHOLD = 0.2
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
LETTERS = {"passed": "P", "failed": "F", "error": "E", "skipped": "S", "xfailed": "x", "xpassed": "X"}
OUTCOME_OF = {letter: outcome for outcome, letter in LETTERS.items()}
PASSES, FAILS, SKIPS = frozenset("PX"), frozenset("FE"), frozenset("Sx")
FAILED_OUTCOMES = ("failed", "error")
PASSED_OUTCOMES = ("passed", "xpassed")
IGNORED_OUTCOMES = ("skipped", "xfailed")
SORTS = ("nodeid", "flaky", "slowest", "failing")
HISTORY_LIMIT, MAX_HISTORY_LIMIT = 30, 500


def letter(outcome: str) -> str:
    """The one-letter code of an outcome (an unknown one counts as a skip: it says nothing)."""
    return LETTERS.get(outcome, "S")


def judged(recent: str) -> str:
    """Only the letters that say pass or fail (skips and xfails left out), oldest first."""
    return "".join(ch for ch in recent if ch in PASSES or ch in FAILS)


def flaky_score(recent: str) -> float:
    """Over the last results (skips ignored): the share of consecutive results that flip between pass and
    fail, ``flips / (n - 1)``; 0 with fewer than two results."""
    seen = [ch in PASSES for ch in recent[-WINDOW:] if ch not in SKIPS]
    if len(seen) < 2:
        return 0.0
    flips = sum(a != b for a, b in zip(seen, seen[1:]))
    return round(flips / (len(seen) - 1), 4)


def is_flaky(recent: str, score: float | None = None) -> bool:
    """Flaky: a score of at least 0.2 with at least one pass and one fail among the last results."""
    kept = judged(recent[-WINDOW:])
    score = flaky_score(recent) if score is None else score
    return score >= FLAKY_THRESHOLD and bool(PASSES & set(kept)) and bool(FAILS & set(kept))


def pass_rate(passed: int, failed: int) -> float | None:
    """passed / (passed + failed); None when the test never passed nor failed."""
    return round(passed / (passed + failed), 4) if passed + failed else None


def median_duration(recent: str, durations: list) -> float | None:
    """The median duration of the last results that ran (skips left out); None when none ran. ``recent`` and
    ``durations`` are aligned from their ends."""
    kept = sorted(d for ch, d in zip(recent[-len(durations):] if durations else "", durations) if ch not in SKIPS)
    if not kept:
        return None
    middle = len(kept) // 2
    return round(float(kept[middle] if len(kept) % 2 else (kept[middle - 1] + kept[middle]) / 2), 6)


def is_new_failure(outcome: str, previous: str | None) -> bool:
    """Failed (or error) now, and passed the previous time it ran on the same environment (skips left out
    of "previous"). The next failure after a failure is not new: a new failure is marked only once."""
    return outcome in FAILED_OUTCOMES and previous in PASSED_OUTCOMES


@dataclass
class Summary:
    """What ``test_stats`` keeps of one test."""

    nodeid: str
    runs: int = 0
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    recent: str = ""
    durations: list = field(default_factory=list)
    last_outcome: str | None = None
    last_run_id: int | None = None
    last_at: object = None

    def add(self, outcome: str, duration: float, run_id: int | None, at=None) -> None:
        """One more result (the newest)."""
        code = letter(outcome)
        self.runs += 1
        if code in PASSES:
            self.passed += 1
        elif code in FAILS:
            self.failed += 1
        else:
            self.skipped += 1
        self.recent = (self.recent + code)[-WINDOW:]
        self.durations = (list(self.durations) + [round(float(duration or 0.0), 4)])[-WINDOW:]
        self.last_outcome, self.last_run_id, self.last_at = outcome, run_id, at

    def add_all(self, results: Iterable[tuple[str, float, int | None, object]]) -> "Summary":
        for outcome, duration, run_id, at in results:
            self.add(outcome, duration, run_id, at)
        return self

    def derived(self) -> dict:
        """The columns computed from the others."""
        score = flaky_score(self.recent)
        return {"pass_rate": pass_rate(self.passed, self.failed), "flaky_score": score,
                "median_duration": median_duration(self.recent, self.durations)}

    def row(self) -> dict:
        """Every column of the test's ``test_stats`` row."""
        return {"nodeid": self.nodeid, "runs": self.runs, "passed": self.passed, "failed": self.failed,
                "skipped": self.skipped, "recent": self.recent, "durations": list(self.durations),
                "last_outcome": self.last_outcome, "last_run_id": self.last_run_id, "last_at": self.last_at,
                **self.derived()}
