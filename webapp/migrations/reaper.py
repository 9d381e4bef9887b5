"""Maintenance of migrations (the workers' loop calls ``reap``): a silent copy worker ends its migration
"worker lost"; a job Redis lost is queued again; a validating migration whose run ended is ended by it."""
from __future__ import annotations

from datetime import timedelta

from flask import current_app
from rq.job import JobStatus
from sqlalchemy import select

from ..db import utcnow
from ..domain.migration import MigrationState
from ..extensions import db, job_status
from ..models import MigrationRow
from . import validation
from .services import _enqueue, end, running


def reap(now=None) -> dict:
    """Maintenance: end migrations whose worker went silent; queue again those whose job was lost."""
    now = now or utcnow()
    stale = now - timedelta(seconds=current_app.config["MIGRATION_STALE_SECONDS"])
    session = db.session
    silent = session.execute(select(MigrationRow.id, MigrationRow.job_id).where(
        MigrationRow.state == MigrationState.RUNNING.value, MigrationRow.started_at.is_not(None),
        MigrationRow.heartbeat_at < stale, validation.not_validating())).all()
    session.rollback()
    lost = sum(end(running(m.id, m.job_id) & (MigrationRow.heartbeat_at < stale) & validation.not_validating(),
                   MigrationState.ERROR, "worker lost", now) for m in silent)
    validation.repair(now)
    waiting = session.scalars(select(MigrationRow).where(
        MigrationRow.state == MigrationState.RUNNING.value, MigrationRow.started_at.is_(None),
        MigrationRow.queued_at < stale)).all()
    requeued = 0
    for row in waiting:
        status = job_status(row.job_id)
        if status in (None, JobStatus.CANCELED, JobStatus.STOPPED):
            _enqueue(row)
            requeued += 1
        elif status == JobStatus.FAILED:
            end(running(row.id, row.job_id), MigrationState.ERROR, "the worker failed before it started the copy")
    session.commit()
    return {"lost": lost, "requeued": requeued}
