"""Queue visibility (issue 13), in plain Python: a queued run's place, when it will likely start, and the
words the pages use for a wait.

The place. The waiting runs (queued, not yet given an environment) are ordered by ``pools.order_key``. A
waiting run's ``position`` is 1 + the number of waiting runs ordered before it that compete with it: for a
run on one environment, those that could start there (its runs and the pool runs whose label it carries);
for a pool run, those that could start on at least one enabled environment of its pool. 1 = next to start
when one of its environments frees; 0 = given an environment, waiting for a worker.

The estimate. ``typical``: the median duration of the last runs finished on those environments (see
``RECENT``). Each environment frees after ``remaining`` seconds (the current run's typical duration minus
its elapsed time, at least 0; a held environment not before its hold ends). A run at position ``p`` on ``n``
environments starts after the first of them frees plus ``(p − 1) · typical / n``: the runs ahead of it
share the ``n`` environments.
"""
from __future__ import annotations

from typing import Iterable, Sequence

RECENT = 20  # finished runs whose durations make the typical duration
WAIT_WINDOW_SECONDS = 3600  # wait_p50_seconds: the runs dispatched in the last hour


def median(values: Iterable[float]) -> float | None:
    """The median (the mean of the two middle values for an even count); None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[middle])
    return (ordered[middle - 1] + ordered[middle]) / 2


def remaining(typical: float | None, elapsed: float | None, hold_left: float = 0.0) -> float:
    """Seconds until an environment frees: its current run's (``elapsed``: None when it has none) typical
    rest, at least 0, and never before its hold ends."""
    rest = 0.0 if elapsed is None else max((typical or 0.0) - max(elapsed, 0.0), 0.0)
    return max(rest, hold_left, 0.0)


def estimate(position: int | None, typical: float | None, frees_after: Sequence[float]) -> float | None:
    """Seconds until a run at ``position`` starts, on the environments that free after ``frees_after``
    seconds each. None when unknown: not waiting, no finished run to go by, or no environment to run on."""
    if position is None:
        return None
    if position <= 0:
        return 0.0
    if typical is None or not frees_after:
        return None
    return round(min(frees_after) + (position - 1) * typical / len(frees_after), 1)


def wait_words(seconds: float | None) -> str | None:
    """``less than a minute``, ``about 3 min``, ``about 2 h``; None for an unknown wait."""
    if seconds is None:
        return None
    if seconds < 60:
        return "less than a minute"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min"
    return f"about {round(seconds / 3600)} h"
