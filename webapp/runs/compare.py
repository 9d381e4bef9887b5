"""Comparing two runs (issue 12, §3) and finding the run a run is compared with. Read-only; never reads ``request``.

The rule is ``domain/compare.py``'s; here the two runs' results are read: from ``test_results`` (one query for
both runs, by ``ix_test_results_run``), or, for a run that has no rows there (it ended before results were
recorded), from the ``tests`` JSON the run kept. A run that is not finished yet compares with what it has
recorded so far.
"""
from __future__ import annotations


from sqlalchemy import select, union_all
from sqlalchemy.orm import defer

from ..domain import compare as rule
from ..domain.errors import NotFound
from ..domain.runs import RunState
from ..extensions import db
from ..models import RunRow, TestResultRow

FINAL = [s.value for s in RunState if s.is_final]
PREVIOUS_SCAN = 50  # previous_run looks at most at this many finished runs of the environment


def _runs(before_id: int, after_id: int) -> tuple[RunRow, RunRow]:
    """Both runs in one query (their JSON columns loaded only when needed); NotFound names the missing one."""
    rows = {r.id: r for r in db.session.scalars(select(RunRow).options(defer(RunRow.tests), defer(RunRow.junit_xml))
                                                .where(RunRow.id.in_({before_id, after_id})))}
    for run_id in (before_id, after_id):
        if run_id not in rows:
            raise NotFound(f"run (#{run_id})")
    return rows[before_id], rows[after_id]


def _from_json(row: RunRow) -> dict[str, tuple[str, float]]:
    """What an older run kept in ``runs.tests``: [{"nodeid", "outcome", "duration"}, ...]."""
    tests = row.tests if isinstance(row.tests, list) else []
    return {t["nodeid"]: (str(t.get("outcome")), float(t.get("duration") or 0.0))
            for t in tests if isinstance(t, dict) and isinstance(t.get("nodeid"), str)}


def results(*rows: RunRow) -> list[dict[str, tuple[str, float]]]:
    """Each run's ``{nodeid: (outcome, duration)}``, in the order given: one query for all of them."""
    found: dict[int, dict[str, tuple[str, float]]] = {r.id: {} for r in rows}
    query = (select(TestResultRow.run_id, TestResultRow.nodeid, TestResultRow.outcome, TestResultRow.duration)
             .where(TestResultRow.run_id.in_(found)).order_by(TestResultRow.id))
    for run_id, nodeid, outcome, duration in db.session.execute(query):
        found[run_id][nodeid] = (outcome, duration or 0.0)
    return [found[r.id] or _from_json(r) for r in rows]


def compare(before_id: int, after_id: int) -> dict[str, list]:
    """``{"fixed", "new_failures", "still_failing", "added", "removed", "slower"}`` of run ``before_id`` (the
    earlier) against ``after_id`` (the later); NotFound when either run does not exist."""
    return rule.compare(*results(*_runs(before_id, after_id)))


def previous_run(row: RunRow) -> RunRow | None:
    """The latest finished run before ``row`` (smaller id) on its environment with the same test files (as a
    set), among the environment's last ``PREVIOUS_SCAN`` finished runs before it. One query: a branch per
    final state, each read backwards along ``ix_runs_env_state`` (environment_id, state, id). A pool run
    never given an environment has none."""
    if row.environment_id is None:
        return None
    branches = [select(RunRow.id, RunRow.test_files).where(
        RunRow.environment_id == row.environment_id, RunRow.state == state, RunRow.id < row.id)
        .order_by(RunRow.id.desc()).limit(PREVIOUS_SCAN).subquery().select() for state in FINAL]
    latest = union_all(*branches).subquery()
    candidates = db.session.execute(select(latest.c.id, latest.c.test_files)
                                    .order_by(latest.c.id.desc()).limit(PREVIOUS_SCAN))
    files = set(row.test_files or [])
    match = next((run_id for run_id, test_files in candidates if set(test_files or []) == files), None)
    return db.session.get(RunRow, match) if match is not None else None




def page(before_id: int, after_id: int) -> dict:
    """What ``/runs/<a>/compare/<b>`` shows: both runs, the six lists and their counts."""
    before, after = _runs(before_id, after_id)
    found = rule.compare(*results(before, after))
    return {"before": before, "after": after, "found": found, "counts": {k: len(v) for k, v in found.items()},
            "slower_ratio": rule.SLOWER_RATIO[0] / rule.SLOWER_RATIO[1],
            "slower_min": rule.SLOWER_MIN_MS / 1000}
