"""Test runs: create (and queue), read, list, cancel, rerun, logs. Never reads ``request``."""
from __future__ import annotations

from typing import Any, Mapping

from redis.exceptions import RedisError
from sqlalchemy import func, select

from .. import inputs
from ..audit import services as audit
from ..db import update as sql_update
from ..db import utcnow
from ..domain.errors import InvalidStateError, NotFound
from ..domain.runs import RunState, Summary
from ..extensions import cancel_job, db, queues
from ..models import EnvironmentRow, RunLogChunk, RunRow
from ..pagination import Page, paginate
from ..migrations import validation
from . import dispatch, queueing, results, testfiles
from .executor import cancel_key

LOG_PAGE = 256 * 1024  # characters served by one log request at most


def _iso(value):
    return value.isoformat() if value else None


def _enabled(environment_id: int) -> bool:
    # Locked until the run is committed: runs created at once on one environment get their ids, and so
    # their place in the queue, in the order they really happened (PostgreSQL).
    environment = db.session.get(EnvironmentRow, environment_id, with_for_update=True)
    return environment is not None and environment.enabled


def pool_exists(label: str) -> bool:
    """Does an enabled environment carry ``label``? (At most a hundred environments: read them all.)"""
    return any(label in (labels or []) for labels in db.session.scalars(
        select(EnvironmentRow.labels).where(EnvironmentRow.enabled.is_(True))))


def create(data: Any, username: str, *, rerun_of: int | None = None, schedule_id: int | None = None) -> RunRow:
    """Queue a run for the account ``username`` (a request may name it, never another account);
    ``schedule_id``: started by that schedule (``schedules.services.tick``). A pool run waits with no
    environment until one of its pool's is free."""
    clean = inputs.run(data, username, testfiles.exists, _enabled, pool_exists)
    row = RunRow(state=RunState.QUEUED.value, schedule_id=schedule_id, **clean)
    db.session.add(row)
    db.session.flush()
    details = {"environment_id": row.environment_id, "test_files": row.test_files,
               **({"pool": row.pool} if row.pool else {}), "priority": row.priority,
               **({"schedule_id": schedule_id} if schedule_id else {})}
    audit.record("run.rerun" if rerun_of else "run.create", f"run:{row.id}", **details,
                 **({"rerun_of": rerun_of} if rerun_of else {}))
    db.session.commit()
    if row.pool is not None:
        dispatch.safe_dispatch_pool(row.pool)
    else:
        dispatch.safe_dispatch(row.environment_id)
    db.session.refresh(row)
    return row


def rerun(run_id: int, username: str) -> RunRow:
    """The same files on the same environment (or in the same pool) again, at the same priority, as a new run
    of whoever asked."""
    row = get(run_id)
    where = {"pool": row.pool} if row.pool else {"environment_id": row.environment_id}
    return create({**where, "test_files": row.test_files, "priority": row.priority}, username, rerun_of=run_id)


def get(run_id: int) -> RunRow:
    row = db.session.get(RunRow, run_id)
    if row is None:
        raise NotFound("run")
    return row




def list_page(page: int, per_page: int, filters: Mapping[str, Any] | None = None) -> Page:
    stmt = select(RunRow)
    for name, value in (filters or {}).items():
        stmt = stmt.where(getattr(RunRow, name) == value)
    return paginate(db.session, stmt, page, per_page, key=RunRow.id, descending=True)


def queue_positions(rows: list[RunRow]) -> dict[int, tuple[int, float | None]]:
    """Each queued run of ``rows``: its place in line and the seconds until it likely starts
    (``queueing.places``: priority and aging, pool runs included; 0: given the environment, starting)."""
    return queueing.places(rows)


def duration(row: RunRow) -> float | None:
    if row.started_at is None:
        return None
    return round(((row.finished_at or utcnow()) - row.started_at).total_seconds(), 3)


EMPTY_SUMMARY = Summary().as_dict()


def as_json(row: RunRow, places: dict[int, tuple] | None = None, tests: list[dict] | None = None) -> dict:
    """A run; ``places``: ``queue_positions`` of a list; ``tests``: given by the list (light), else each
    test in full with its flags."""
    places = places if places is not None else queue_positions([row])
    position, estimate = places.get(row.id, (None, None))
    if tests is None:  # a run's results are written when it ends: none to read before
        tests = results.for_run(db.session, row.id, row.tests) if RunState(row.state).is_final else []
    return {
        "id": row.id, "username": row.username, "environment_id": row.environment_id, "pool": row.pool,
        "priority": row.priority,
        "test_files": list(row.test_files), "state": row.state, "queue_position": position,
        "estimated_start_seconds": estimate,
        "exit_code": row.exit_code, "summary": {**EMPTY_SUMMARY, **(row.summary or {})}, "tests": tests,
        "error": row.error, "created_at": _iso(row.created_at), "started_at": _iso(row.started_at),
        "finished_at": _iso(row.finished_at), "duration": duration(row),
        "sandbox": {"mode": row.sandbox_mode, "detail": row.sandbox_detail},
        "migration_id": row.migration_id, "link": validation.link(row.migration_id),
        # the names of the environment's variables and secrets the run was given (never a secret's value)
        "variables": list(row.variable_names or []), "secrets": list(row.secret_names or []),
        "stages": row.stages or {},
    }


def page_json(page: Page) -> dict:
    places, tests = queue_positions(page.items), results.for_runs(db.session, page.items)
    return page.as_json(lambda row: as_json(row, places, tests[row.id]))


def cancel(run_id: int) -> RunRow:
    """Queued: leaves the queue at once. Running: pytest and its children are killed within 2 s."""
    row = get(run_id)
    if RunState(row.state).is_final:
        raise InvalidStateError(f"This run is already {row.state}.")
    audit.record("run.cancel", f"run:{run_id}", state=row.state)
    session = db.session
    if row.state == RunState.QUEUED.value:
        token, job_id = row.lock_token, row.job_id
        if dispatch.finish(run_id, token, state=RunState.CANCELLED.value, error="cancelled"):
            if token:  # it held the environment while waiting for a worker: hand it on
                cancel_job(job_id)  # best effort: the job checks the run's state anyway
                dispatch.release(row.environment_id, token)
            session.refresh(row)
            return row
        session.refresh(row)  # it started meanwhile: cancel it as a running run
    session.execute(sql_update(RunRow).where(RunRow.id == run_id).values(cancel_requested=True))
    session.commit()
    try:
        queues.redis.set(cancel_key(run_id), "1", ex=3600)
    except RedisError:
        pass  # the watchdog also reads cancel_requested at its next heartbeat
    session.refresh(row)
    return row


def log_slice(run_id: int, offset: int) -> dict:
    row = get(run_id)
    total = db.session.scalar(select(func.coalesce(func.max(RunLogChunk.end), 0)).where(RunLogChunk.run_id == run_id))
    start = min(max(offset, 0), total)  # an offset past the end (even past what the database can compare) reads ""
    chunks = db.session.execute(select(RunLogChunk.start, RunLogChunk.text).where(
        RunLogChunk.run_id == run_id, RunLogChunk.end > start).order_by(RunLogChunk.start)).all()
    text = "".join(c.text for c in chunks)[max(0, start - chunks[0].start):] if chunks else ""
    text = text[:LOG_PAGE]
    next_offset = start + len(text)
    complete = RunState(row.state).is_final and next_offset >= total
    return {"text": text, "offset": offset, "next_offset": next_offset, "complete": complete}


def log_text(run_id: int) -> str:
    get(run_id)
    return "".join(db.session.scalars(select(RunLogChunk.text).where(RunLogChunk.run_id == run_id)
                                      .order_by(RunLogChunk.start)))


def junit_xml(run_id: int) -> str:
    row = get(run_id)
    if not row.junit_xml:
        raise NotFound("JUnit report (the run has not produced one)")
    return row.junit_xml
