"""The overview's figures: what is going on now across the three jobs (migrations, test runs, event
deliveries) and how the last days went. Every query is bounded by an index and a time window."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from ..db import utcnow
from ..domain.events import EventStatus
from ..domain.migration import MigrationState
from ..domain.runs import RunState
from ..environments import services as environments
from ..extensions import db
from ..models import EventRow, MigrationRow, RunRow, WorkloadRow

DAYS = 14  # the charts' days (UTC), today included
RUN_OUTCOMES = (RunState.SUCCESS.value, RunState.FAILED.value, RunState.ERROR.value, RunState.CANCELLED.value)
MIGRATION_OUTCOMES = (MigrationState.SUCCESS.value, MigrationState.ERROR.value)


def overview() -> dict:
    session = db.session
    states = dict(session.execute(select(MigrationRow.state, func.count()).group_by(MigrationRow.state)).all())
    return {"workloads": session.scalar(select(func.count()).select_from(WorkloadRow)) or 0,
            "migrations": states, "migrations_total": sum(states.values())}


def _counts(column, values, *where) -> dict[str, int]:
    found = dict(db.session.execute(select(column, func.count()).where(column.in_(values), *where)
                                    .group_by(column)).all())
    return {v: found.get(v, 0) for v in values}


def _ended(state, finished_at, start: datetime, end: datetime) -> dict[str, int]:
    """What ended from ``start`` to ``end``, per state. Bounded on both sides, so that SQLite picks the range
    along ``ix_runs_finished`` (with only ``>= start`` it read the whole table along ``ix_runs_state``)."""
    return dict(db.session.execute(select(state, func.count()).where(finished_at >= start, finished_at < end)
                                   .group_by(state)).all())


def now(moment: datetime | None = None) -> dict:
    """The live panel's numbers: in progress, waiting, failed in the last 24 h, events not yet delivered."""
    moment = moment or utcnow()
    since, until = moment - timedelta(hours=24), moment + timedelta(hours=1)
    runs = _counts(RunRow.state, (RunState.RUNNING.value, RunState.QUEUED.value))
    failed = _ended(RunRow.state, RunRow.finished_at, since, until)
    migration_errors = _ended(MigrationRow.state, MigrationRow.finished_at, since, until)
    events = _counts(EventRow.status, (EventStatus.PENDING.value, EventStatus.FAILED.value))
    _, states = environments.all_with_status()
    return {
        "migrations_running": _counts(MigrationRow.state, (MigrationState.RUNNING.value,))["running"],
        "runs_running": runs["running"], "runs_waiting": runs["queued"],
        "environments_busy": sum(1 for s in states.values() if s["busy"]), "environments": len(states),
        "runs_failed": failed.get(RunState.FAILED.value, 0), "runs_error": failed.get(RunState.ERROR.value, 0),
        "migrations_error": migration_errors.get(MigrationState.ERROR.value, 0),
        "events_pending": events["pending"], "events_failed": events["failed"],
    }


def day_starts(moment: datetime | None = None, days: int = DAYS) -> list[datetime]:
    """The starts of the last ``days`` UTC days, oldest first, today last."""
    today = (moment or utcnow()).replace(hour=0, minute=0, second=0, microsecond=0)
    return [today - timedelta(days=k) for k in range(days - 1, -1, -1)]


def per_day(column, state, outcomes: tuple[str, ...], starts: list[datetime]) -> dict[str, list[int]]:
    """How many rows ended (``column``: their end time) each day from ``starts``, per ``state`` of ``outcomes``:
    one small count per day over its time range (an index on ``column`` serves each; one query with a CASE
    per day was three times slower on SQLite)."""
    result = {o: [0] * len(starts) for o in outcomes}
    ends = starts[1:] + [starts[-1] + timedelta(days=1)]
    for i, (start, end) in enumerate(zip(starts, ends)):
        for name, n in _ended(state, column, start, end).items():
            if name in result:
                result[name][i] = n
    return result


def history(moment: datetime | None = None) -> dict:
    """Runs per day by outcome (by ``finished_at``) and migrations per day by outcome (by ``finished_at``)."""
    starts = day_starts(moment)
    return {"days": starts,
            "runs": per_day(RunRow.finished_at, RunRow.state, RUN_OUTCOMES, starts),
            "migrations": per_day(MigrationRow.finished_at, MigrationRow.state, MIGRATION_OUTCOMES, starts)}
