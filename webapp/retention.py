"""Retention (``RETENTION_DAYS``): what the workers' maintenance loop deletes once it is old enough.

- a finished run's log (``run_log_chunks``), JUnit XML and per-test results (``runs.junit_xml``, ``runs.tests``
  set to NULL; its tests' tracebacks, ``test_results.details``) ``RETENTION_DAYS`` after it finished; the run row,
  its state and summary stay, and so does each test's outcome, duration and message (the tests' history);
- a processed event and its inbox entry (``notifications``) once it was processed and its entry read that long
  ago (an event with an unread entry, or one not yet processed, stays).

In batches of ``BATCH_ROWS`` rows per statement, at most ``BATCHES`` batches of each kind per pass, each
batch its own short transaction: SQLite has one write lock, and a pass never holds it for long. A pass that
deleted something writes one audit entry (``retention.prune``, by ``system`` via ``worker``). Passes run at
most every ``INTERVAL_SECONDS`` (one Redis key for every host), sooner while a backlog is left."""
from __future__ import annotations

import time
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import Text, cast, delete, exists, null, select

from .audit import services as audit
from .db import update as sql_update
from .db import utcnow
from .domain.events import EventStatus
from .domain.runs import RunState
from .extensions import db, queues
from .models import EventRow, NotificationRow, RunLogChunk, RunRow, TestResultRow

BATCH_ROWS = 500
BATCHES = 4
PAUSE_SECONDS = 0.02  # between batches: writers waiting for SQLite's lock get their turn
INTERVAL_SECONDS = 600
DUE_KEY = "cutover:retention"
COUNTS_KEY = "cutover:retention:deleted"  # a hash: "passes" and the rows deleted per kind, for GET /metrics
FINAL = [s.value for s in RunState if s.is_final]
KINDS = ("run_logs", "run_results", "notifications", "events")


def empty_counts() -> dict:
    return dict.fromkeys(KINDS, 0)


def prune_if_due(now: datetime | None = None) -> dict:
    """One pass, unless a pass ran in the last INTERVAL_SECONDS and left no backlog (then all counts are 0)."""
    if not current_app.config["RETENTION_DAYS"]:
        return empty_counts()
    redis = queues.redis
    if not redis.set(DUE_KEY, "1", nx=True, ex=INTERVAL_SECONDS):
        return empty_counts()
    counts = prune(now)
    if counts.pop("backlog"):
        redis.delete(DUE_KEY)  # the next tick goes on
    with redis.pipeline() as pipe:  # counted for /metrics (cutover_retention_*_total)
        pipe.hincrby(COUNTS_KEY, "passes", 1)
        for kind, rows in counts.items():
            pipe.hincrby(COUNTS_KEY, kind, rows)
        pipe.execute()
    return counts


def prune(now: datetime | None = None, batch: int | None = None, batches: int | None = None) -> dict:
    """Delete what is older than RETENTION_DAYS; return the rows deleted (cleared, for run results) per kind
    and ``backlog``: whether some kind filled every batch, so more may be left."""
    days = current_app.config["RETENTION_DAYS"]
    batch, batches = batch or BATCH_ROWS, batches or BATCHES
    counts = empty_counts()
    if not days:
        return {**counts, "backlog": False}
    cutoff = (now or utcnow()) - timedelta(days=days)
    steps = {"run_logs": _run_logs, "run_results": _run_results, "events": _events}
    backlog = False
    for kind, step in steps.items():
        for _ in range(batches):
            done = step(cutoff, batch, counts)
            db.session.commit()
            if done < batch:
                break
            time.sleep(PAUSE_SECONDS)
        else:
            backlog = True
    if any(counts.values()):
        audit.record("retention.prune", "retention", days=days, before=cutoff.isoformat(), **counts)
        db.session.commit()
    return {**counts, "backlog": backlog}


def _old_runs(cutoff: datetime):
    return select(RunRow.id).where(RunRow.state.in_(FINAL), RunRow.finished_at < cutoff)


def _run_logs(cutoff: datetime, batch: int, counts: dict) -> int:
    ids = list(db.session.scalars(select(RunLogChunk.id).where(RunLogChunk.run_id.in_(_old_runs(cutoff)))
                                  .limit(batch)))
    if ids:
        db.session.execute(delete(RunLogChunk).where(RunLogChunk.id.in_(ids)))
    counts["run_logs"] += len(ids)
    return len(ids)


def _run_results(cutoff: datetime, batch: int, counts: dict) -> int:
    # JSON's None may be stored as the JSON text null: that is gone too (SQL NULL is written, found no more)
    kept = RunRow.junit_xml.is_not(None) | (RunRow.tests.is_not(None) & (cast(RunRow.tests, Text) != "null"))
    ids = list(db.session.scalars(_old_runs(cutoff).where(kept).limit(batch)))
    if ids:
        db.session.execute(sql_update(RunRow).where(RunRow.id.in_(ids)).values(junit_xml=None, tests=null()))
        db.session.execute(sql_update(TestResultRow).where(TestResultRow.run_id.in_(ids),
                                                           TestResultRow.details.is_not(None)).values(details=None))
    counts["run_results"] += len(ids)
    return len(ids)


def _events(cutoff: datetime, batch: int, counts: dict) -> int:
    kept = exists().where(NotificationRow.event_id == EventRow.id,
                          NotificationRow.read_at.is_(None) | (NotificationRow.read_at >= cutoff))
    # queued_at (never after processed_at) bounds the walk along ix_events_status_queued
    ids = list(db.session.scalars(select(EventRow.id).where(
        EventRow.status == EventStatus.PROCESSED.value, EventRow.queued_at < cutoff, EventRow.processed_at < cutoff,
        ~kept).limit(batch)))
    if ids:
        gone = db.session.execute(delete(NotificationRow).where(NotificationRow.event_id.in_(ids)))
        db.session.execute(delete(EventRow).where(EventRow.id.in_(ids)))
        counts["notifications"] += gone.rowcount
    counts["events"] += len(ids)
    return len(ids)
