"""The common case of ``services.run`` on SQLite, with the write lock held only for its writes.

``services.run`` reads the record, its source and the other migrations of that source, decrypts both passwords and
checks every preflight rule while holding SQLite's write lock (``BEGIN IMMEDIATE``): every worker claiming or
ending a migration waits meanwhile. Here the record and its source are read and checked in a read transaction (no
lock), then one write transaction records the start *only if nothing the checks depend on changed*: the migration
(its state and ``updated_at``, which every write of it moves) and its source (``updated_at``); the same UPDATE checks
that no other migration of that source is running (the ``exclusive_source`` rule). SQLite has one writer at a time,
so that conditional UPDATE is as safe as the locked reads were.

Anything else (a check fails, something changed meanwhile, a validated migration, a caller already in a
transaction, another database) returns None and ``services.run`` does it all as before, under the lock.
"""
from __future__ import annotations

import uuid

from sqlalchemy import bindparam, exists, select
from sqlalchemy.orm.attributes import set_committed_value

from ..audit import services as audit
from ..db import reading
from ..db import update as sql_update
from ..db import utcnow
from ..domain import preflight as rules
from ..domain.migration import Migration, MigrationState
from ..extensions import db
from ..models import MigrationRow, WorkloadRow
from ..workloads import services as workloads
from . import preflight, validation


# The record and its source in one statement, as the database has them whatever the session holds.
_READ = (select(MigrationRow, WorkloadRow).outerjoin(WorkloadRow, WorkloadRow.id == MigrationRow.source_id)
         .where(MigrationRow.id == bindparam("w_id")).execution_options(populate_existing=True))
_OTHER = MigrationRow.__table__.alias("other")
_VALUES = ("state", "error", "cancel_requested", "progress", "phase", "job_id", "queued_at", "started_at",
           "heartbeat_at", "finished_at", "requested_by")
# Built once, on the table (a statement this size costs more to build than to run, and the ORM's UPDATE
# machinery more again): the start, if nothing read has changed.
_START = (sql_update(MigrationRow.__table__).where(
    MigrationRow.id == bindparam("w_id"), MigrationRow.state == bindparam("w_state"),
    MigrationRow.updated_at == bindparam("w_updated_at"), MigrationRow.source_id == bindparam("w_source_id"),
    exists().where(WorkloadRow.id == bindparam("w_source_id"),
                   WorkloadRow.updated_at == bindparam("w_source_updated_at")),
    ~exists().where(_OTHER.c.source_id == bindparam("w_source_id"), _OTHER.c.id != bindparam("w_id"),
                    _OTHER.c.state == MigrationState.RUNNING.value))
    .values({name: bindparam(f"v_{name}") for name in _VALUES}).returning(MigrationRow.updated_at))


def _services():
    from . import services  # services imports this module

    return services


def run_unlocked(migration_id: int, requested_by: str | None) -> MigrationRow | None:
    """Mark the migration running as ``services.run`` would (committed, not yet queued), or None: then the
    caller runs it the usual way."""
    session = db.session
    if db.engine.dialect.name != "sqlite" or session.in_transaction() or session.dirty or session.new:
        return None
    with reading():
        row, source = session.execute(_READ, {"w_id": migration_id}).first() or (None, None)
        migration = _startable(row, source)
        session.commit()  # the read transaction ends (nothing was written); the rows stay loaded
    if migration is None:
        return None
    retry = row.state == MigrationState.ERROR.value
    now = utcnow()
    values = {"state": MigrationState.RUNNING.value, "error": None, "cancel_requested": False,
              "progress": _services()._fresh_progress(migration), "phase": validation.COPYING,
              "job_id": f"migration-{row.id}-{uuid.uuid4().hex[:12]}", "queued_at": now, "started_at": None,
              "heartbeat_at": None, "finished_at": None, "requested_by": requested_by or row.requested_by}
    read = {"w_id": row.id, "w_state": row.state, "w_updated_at": row.updated_at, "w_source_id": source.id,
            "w_source_updated_at": source.updated_at}
    started = session.execute(_START, {**{f"v_{k}": v for k, v in values.items()}, **read}).first()
    if started is None:  # something changed since it was read: the locked path decides
        session.rollback()
        return None
    audit.record_now("migration.retry" if retry else "migration.run", f"migration:{row.id}")
    session.commit()
    for key, value in {**values, "updated_at": started.updated_at}.items():
        set_committed_value(row, key, value)  # the row as stored, without reading it again
    return row


def _startable(row: MigrationRow | None, source: WorkloadRow | None) -> Migration | None:
    """The migration, started in memory, if every preflight rule passes (``preflight.checks``, the one list of
    them: a rule added there applies here too); ``exclusive_source`` is checked again by the UPDATE."""
    if row is None or source is None or row.state not in preflight.RUNNABLE or row.validation is not None:
        return None
    if rules.failed(preflight.checks(row)):  # the locked path refuses it and says why
        return None
    try:
        migration = _services().to_domain(row, workloads.to_domain(source))
        migration.start()
    except Exception:  # a password that cannot be read, say: the locked path reports it as it always did
        return None
    return migration
