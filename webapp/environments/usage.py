"""How an environment was used, for its page's charts: its busy share (the time its runs ran, from their
``started_at`` to their ``finished_at``, or now while running) per hour of the last 24 hours and per day of
the last 7 days, and how long its runs waited to start (``started_at`` − ``created_at``), p50 and p95 per
day of the last 7 days. Days and hours are UTC. Read-only; only the whole page asks (never a poll)."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select

from .. import charts
from ..db import utcnow
from ..extensions import db
from ..models import RunRow

DAYS, HOURS = 7, 24
MAX_RUNS = 5000  # the newest runs of the window at most: bounded whatever the history


def _runs(environment_id: int, since: datetime) -> list:
    """The runs on the environment that ran in the window (or still run)."""
    return db.session.execute(
        select(RunRow.id, RunRow.created_at, RunRow.started_at, RunRow.finished_at)
        .where(RunRow.environment_id == environment_id, RunRow.started_at.is_not(None),
               or_(RunRow.finished_at >= since, RunRow.finished_at.is_(None)))
        .order_by(RunRow.id.desc()).limit(MAX_RUNS)).all()


def busy_share(intervals: list[tuple[datetime, datetime]], buckets: list[tuple[datetime, datetime]]) -> list[float]:
    """For each bucket ``(start, end)``, the percentage of it covered by the ``intervals`` (one decimal, at most
    100: one environment runs one run at a time)."""
    shares = []
    for start, end in buckets:
        length = (end - start).total_seconds()
        busy = sum(max((min(e, end) - max(s, start)).total_seconds(), 0) for s, e in intervals)
        shares.append(min(round(100 * busy / length, 1), 100.0) if length > 0 else 0.0)
    return shares


def _hours(now: datetime) -> list[tuple[datetime, datetime]]:
    top = now.replace(minute=0, second=0, microsecond=0)
    return [(top - timedelta(hours=k), min(top - timedelta(hours=k - 1), now)) for k in range(HOURS - 1, -1, -1)]


def _days(now: datetime) -> list[tuple[datetime, datetime]]:
    top = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return [(top - timedelta(days=k), min(top - timedelta(days=k - 1), now)) for k in range(DAYS - 1, -1, -1)]


def environment_charts(environment_id: int, now: datetime | None = None) -> dict:
    now = now or utcnow()
    days, hours = _days(now), _hours(now)
    runs = _runs(environment_id, days[0][0])
    intervals = [(r.started_at, r.finished_at or now) for r in runs]
    waits: dict[int, list[float]] = {i: [] for i in range(DAYS)}
    for r in runs:
        for i, (start, end) in enumerate(days):
            if start <= r.started_at < end:
                waits[i].append(max((r.started_at - r.created_at).total_seconds(), 0))
    p50 = [_round(charts.percentile(waits[i], 50)) for i in range(DAYS)]
    p95 = [_round(charts.percentile(waits[i], 95)) for i in range(DAYS)]
    day_labels = [start.strftime("%m-%d") for start, _ in days]
    return {
        "hourly": charts.bars([start.strftime("%H:00") for start, _ in hours],
                              [("busy %", busy_share(intervals, hours))], top=100, ticks=8),
        "daily": charts.bars(day_labels, [("busy %", busy_share(intervals, days))], top=100, width=300),
        "wait": charts.bars(day_labels, [("p50", p50), ("p95", p95)]),
        "started": [len(waits[i]) for i in range(DAYS)],
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
