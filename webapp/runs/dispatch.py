"""Handing environments to runs: a Redis lock per environment, no waiting workers.

An RQ job is enqueued only for a run that holds its environment's lock. When a run ends in any way its
lock is released and ``dispatch`` gives the environment at once to the first of the runs that could use
it (runs for it and pool runs of its labels, high or aged first, then in creation order: ``domain.pools``).
``reap`` (in the workers' maintenance loop) repairs what crashes and Redis restarts leave behind.
"""
from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from flask import current_app
from redis.exceptions import RedisError
from rq.job import JobStatus
from sqlalchemy import and_, case, or_, select

from ..db import reading, utcnow
from ..db import update as sql_update
from ..domain import pools
from ..domain.events import EventSource
from ..domain.holds import active as hold_active
from ..domain.runs import RunState
from ..events import services as events
from ..extensions import db, enqueue, job_status, queues
from ..models import EnvironmentRow, RunRow
from . import jobs
from .locks import EnvironmentLock

log = logging.getLogger(__name__)
QUEUED, RUNNING = RunState.QUEUED.value, RunState.RUNNING.value


def environment_lock(environment_id: int) -> EnvironmentLock:
    ttl_ms = int(current_app.config["ENV_LOCK_TTL_SECONDS"] * 1000)
    return EnvironmentLock(queues.redis, environment_id, ttl_ms)


def candidates(environment_id: int, enabled: bool, labels: list[str], now: datetime):
    """The waiting runs that could start on this environment, the first to start first (``domain.pools``):
    runs for it, and (while it is enabled) pool runs whose label it carries; by effective priority, then id."""
    could = RunRow.environment_id == environment_id
    if enabled and labels:
        could = or_(could, and_(RunRow.environment_id.is_(None), RunRow.pool.in_(list(labels))))
    aged = pools.aged_before(now, current_app.config["PRIORITY_AGING_MINUTES"])
    high = case((or_(RunRow.priority == pools.HIGH, RunRow.created_at < aged), 0), else_=1)
    return (select(RunRow.id, RunRow.pool).where(RunRow.state == QUEUED, RunRow.lock_token.is_(None), could)
            .order_by(high, RunRow.id))


def dispatch(environment_id: int) -> int | None:
    """Give a free environment to the first of the runs that could use it and queue that run's job (a pool
    run is given this environment). Returns the run id."""
    session = db.session
    lock = environment_lock(environment_id)
    for _ in range(10):  # a head that was cancelled or taken by another environment meanwhile is skipped
        session.rollback()  # as ever, nothing of the caller's is pending here; the reads begin their own transaction
        with reading():  # SQLite: a deferred read, no write lock; the claim below is fenced by its WHERE
            env = session.execute(select(EnvironmentRow.enabled, EnvironmentRow.labels, EnvironmentRow.hold_until)
                                  .where(EnvironmentRow.id == environment_id)).first()
            in_use = env is not None and session.scalar(select(RunRow.id).where(
                RunRow.environment_id == environment_id,
                or_(RunRow.state == RUNNING, and_(RunRow.state == QUEUED, RunRow.lock_token.is_not(None)))).limit(1))
            head = None if env is None or in_use or held(env.hold_until) else session.execute(
                candidates(environment_id, env.enabled, env.labels or [], utcnow()).limit(1)).first()
            session.rollback()  # end the read transaction
        if head is None:
            return None  # nothing waiting, the environment is already in use, or it is held
        token = f"run-{head.id}-{uuid.uuid4().hex[:12]}"
        if not lock.acquire(token):
            return None  # held by another run; it dispatches when it ends
        job_id = f"{token}-job"
        refused = EnvironmentRow.hold_until > utcnow()  # held meanwhile (or, for a pool run, disabled)
        if head.pool is not None:
            refused = or_(refused, EnvironmentRow.enabled.is_(False))
        claimed = session.execute(
            sql_update(RunRow)
            .where(RunRow.id == head.id, RunRow.state == QUEUED, RunRow.lock_token.is_(None),
                   or_(RunRow.environment_id == environment_id, RunRow.environment_id.is_(None)),
                   ~select(EnvironmentRow.id).where(EnvironmentRow.id == environment_id, refused).exists())
            .values(lock_token=token, job_id=job_id, dispatched_at=utcnow(), environment_id=environment_id)
        ).rowcount
        session.commit()
        if claimed:
            queue_job(head.id, job_id)
            return head.id
        lock.release(token)
    return None


def pool_environments(label: str) -> list[int]:
    """The enabled, not held environments carrying ``label`` (at most a hundred: read them all)."""
    rows = db.session.execute(select(EnvironmentRow.id, EnvironmentRow.labels, EnvironmentRow.hold_until)
                              .where(EnvironmentRow.enabled.is_(True)).order_by(EnvironmentRow.id)).all()
    db.session.rollback()
    return [r.id for r in rows if label in (r.labels or []) and not held(r.hold_until)]


def pool_waits(label: str) -> bool:
    found = db.session.scalar(select(RunRow.id).where(RunRow.pool == label, RunRow.state == QUEUED,
                                                      RunRow.lock_token.is_(None),
                                                      RunRow.environment_id.is_(None)).limit(1))
    db.session.rollback()
    return found is not None


def dispatch_pool(label: str) -> int:
    """Offer each free environment of the pool ``label`` to its waiting runs, until none of the pool's waits.
    Returns how many runs were started."""
    started = 0
    for environment_id in pool_environments(label):
        if not pool_waits(label):
            break
        started += dispatch(environment_id) is not None
    return started


def safe_dispatch_pool(label: str) -> None:
    try:
        dispatch_pool(label)
    except RedisError as exc:
        log.warning("could not dispatch pool %s now: %s", label, exc)


def held(until: datetime | None) -> bool:
    return hold_active(until, utcnow())


def queue_job(run_id: int, job_id: str) -> None:
    timeout = int(current_app.config["RUN_TIMEOUT_SECONDS"] + current_app.config["TEARDOWN_TIMEOUT_SECONDS"] + 120)
    try:
        enqueue(jobs.run_tests, run_id, job_id=job_id, job_timeout=timeout, result_ttl=600, failure_ttl=7 * 86400)
    except RedisError:
        log.warning("Redis unavailable; run %s will be queued by the maintenance loop", run_id)


def safe_dispatch(environment_id: int) -> None:
    """Dispatch, but never fail the caller: the maintenance loop retries what Redis refused now."""
    try:
        dispatch(environment_id)
    except RedisError as exc:
        log.warning("could not dispatch environment %s now: %s", environment_id, exc)


def finish(run_id: int, token: str | None, queued: list | None = None, **values) -> bool:
    """Record a final state, fenced: only the holder of ``token`` (None: a run never given its
    environment) may end a run not yet final. The run's user is notified in the same transaction; with
    ``queued``, the event's id is added there for the caller to queue after handing the environment on."""
    values.setdefault("finished_at", utcnow())
    tests = values.pop("tests", None) or []  # each its own test_results row (runs.tests: only older runs)
    holder = RunRow.lock_token.is_(None) if token is None else RunRow.lock_token == token
    run = db.session.execute(
        sql_update(RunRow)
        .where(RunRow.id == run_id, holder, RunRow.state.in_((QUEUED, RUNNING)))
        .values(**values)
        .returning(RunRow.username, RunRow.environment_id, RunRow.pool, RunRow.summary, RunRow.migration_id)
    ).first()
    if run:
        from ..testhistory import stats
        from . import results

        results.record(db.session, run_id, run.environment_id, values["finished_at"], tests)
        stats.update(db.session, run_id)
    event = run and events.notify(run.username, _ended(run_id, run, values), EventSource.RUN, "runs.detail",
                                  run_id=run_id)
    ids, migration_ended = [event.id] if event else [], None
    if run and run.migration_id is not None:  # a validation run: its migration ends with it, in this transaction
        from ..migrations import validation

        migration_ended, migration_event = validation.run_ended(
            run_id, run.migration_id, values["state"], values.get("error"), values.get("summary") or run.summary,
            values["finished_at"])
        ids += [migration_event] if migration_event else []
    db.session.commit()
    if queued is not None:
        queued.extend(ids)
    else:
        for event_id in ids:
            events.queue(event_id)
    if migration_ended is not None:
        from ..migrations import services as migrations

        migrations.after_end(migration_ended)
    return run is not None


def _ended(run_id: int, run, values: dict) -> str:
    state, summary = values["state"], values.get("summary") or run.summary
    where = f"on environment {run.environment_id}" if run.environment_id is not None else f"for pool {run.pool}"
    text = f"Test run #{run_id} {where} ended {state}"
    if summary and summary.get("total"):
        text += (f": {summary['passed']} passed, {summary['failed']} failed, {summary['errors']} errors, "
                 f"{summary['skipped']} skipped")
    return text + (f" ({values['error']})" if values.get("error") and state != "cancelled" else ".")


def release(environment_id: int, token: str) -> None:
    """Free the environment (if ``token`` still holds it) and hand it to the next run at once."""
    try:
        environment_lock(environment_id).release(token)
    except RedisError as exc:  # the lock expires by itself within its TTL
        log.warning("could not release env-lock:%s: %s", environment_id, exc)
    safe_dispatch(environment_id)


def _job_waiting(job_id: str | None) -> bool:
    return job_status(job_id) in (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED, JobStatus.STARTED)


def reap(now: datetime | None = None) -> dict:
    """Maintenance: end runs whose worker died, keep dispatched runs alive, dispatch forgotten queues."""
    now = now or utcnow()
    ttl = timedelta(seconds=current_app.config["ENV_LOCK_TTL_SECONDS"])
    session = db.session
    counts = {"lost": 0, "requeued": 0, "dispatched": 0}
    running = session.execute(select(RunRow.id, RunRow.environment_id, RunRow.lock_token, RunRow.heartbeat_at)
                              .where(RunRow.state == RUNNING)).all()
    waiting = session.execute(select(RunRow.id, RunRow.environment_id, RunRow.pool, RunRow.lock_token,
                                     RunRow.job_id, RunRow.dispatched_at)
                              .where(RunRow.state == QUEUED, RunRow.lock_token.is_not(None))).all()
    session.rollback()
    for run in running:
        lock = environment_lock(run.environment_id)
        silent = run.heartbeat_at is None or run.heartbeat_at < now - ttl
        if silent and lock.holder() != run.lock_token:
            if finish(run.id, run.lock_token, state=RunState.ERROR.value, error="worker lost", finished_at=now):
                counts["lost"] += 1
                from . import stages  # its teardown may not have run: held before the lock is freed

                stages.queue(stages.hold_if_dirty(run.id))
            lock.release(run.lock_token)
            dispatch(run.environment_id)
    for run in waiting:  # holds the lock, waits for a free worker
        lock = environment_lock(run.environment_id)
        if not lock.extend(run.lock_token):
            # another token holds the environment: give this run back to the queue (a pool run to its pool)
            back = {"environment_id": None} if run.pool is not None else {}
            session.execute(sql_update(RunRow).where(RunRow.id == run.id, RunRow.state == QUEUED,
                                                     RunRow.lock_token == run.lock_token)
                            .values(lock_token=None, job_id=None, dispatched_at=None, **back))
            session.commit()
        elif not _job_waiting(run.job_id) or (run.dispatched_at and run.dispatched_at < now - ttl
                                              and _job_started_long_ago(run.job_id)):
            job_id = f"{run.lock_token}-{uuid.uuid4().hex[:6]}"
            session.execute(sql_update(RunRow).where(RunRow.id == run.id, RunRow.state == QUEUED)
                            .values(job_id=job_id))
            session.commit()
            queue_job(run.id, job_id)
            counts["requeued"] += 1
    idle = session.execute(select(RunRow.environment_id, RunRow.pool).where(
        RunRow.state == QUEUED, RunRow.lock_token.is_(None)).distinct()).all()
    session.rollback()
    for environment_id in sorted({r.environment_id for r in idle if r.environment_id is not None}):
        if dispatch(environment_id):
            counts["dispatched"] += 1
    for label in sorted({r.pool for r in idle if r.environment_id is None and r.pool is not None}):
        counts["dispatched"] += dispatch_pool(label)
    return counts


def _job_started_long_ago(job_id: str | None) -> bool:
    """A job RQ thinks started but whose run never did: its worker died picking it up."""
    return job_status(job_id) in (JobStatus.STARTED, None)
