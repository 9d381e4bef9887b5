"""Each test's history in one row (test_stats). Placeholder: the history part's real module replaces it."""
from __future__ import annotations


def update(session, run_id):
    """Filled in by the history part."""


def flags(session, run_id) -> dict:
    """``{nodeid: {"flaky": bool, "new_failure": bool}}`` for the tests of a run. Filled in by the history part."""
    return {}
