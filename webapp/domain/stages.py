"""An environment's setup and teardown stages around a run (issue 14), in plain Python: what one stage's
pytest ended as, and what follows for the run and for the environment."""
from __future__ import annotations

from .runs import RunState, outcome
from .results import Summary

SETUP, TEARDOWN = "setup", "teardown"
PASSED, FAILED, ERROR, TIMEOUT, CANCELLED = "passed", "failed", "error", "timeout", "cancelled"
SETUP_FAILED = "setup failed"


def state(exit_code: int | None, reason: str | None, summary: Summary | None) -> str:
    """``passed``, ``failed``, ``error``, ``timeout`` or ``cancelled`` for one stage's pytest; ``reason`` is the
    watchdog's (``cancelled``, ``timeout``, ``lost``, or None)."""
    if reason == "timeout":
        return TIMEOUT
    if reason == "cancelled":
        return CANCELLED
    if reason == "lost":
        return ERROR
    found, _ = outcome(exit_code, summary=summary)
    return {RunState.SUCCESS: PASSED, RunState.FAILED: FAILED}.get(found, ERROR)


def header(stage: str, files: list[str]) -> str:
    """The line that opens a stage's part of the run's log."""
    return f"\n===== {stage}: {' '.join(files)} =====\n"


def hold_reason(run_id: int, teardown: dict | None, configured: bool) -> str | None:
    """Why the environment is held after run ``run_id`` (None: it is not). ``teardown``: the stage's outcome
    (None: it never ran); ``configured``: the environment names a teardown."""
    if not configured:
        return None
    if teardown is None:
        return f"teardown did not run after run #{run_id}"
    if teardown.get("state") != PASSED:
        return f"teardown failed after run #{run_id}"
    return None
