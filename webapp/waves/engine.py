"""The waves' engine: ``advance(wave_id)`` brings a wave up to date, one locked step at a time (see
``services``' docstring); ``tick`` is the maintenance loop's pass, ``migration_ended`` follows a migration's end."""
from __future__ import annotations

import contextvars
import logging

from sqlalchemy import or_, select

from ..audit import services as audit
from ..db import update as sql_update
from ..db import utcnow
from ..domain.errors import DomainError, PreflightFailed
from ..domain.migration import MigrationState
from ..domain.waves import MAX_MEMBERS, WaveState, plan, refusal_text
from ..extensions import db
from ..migrations import services as migrations
from ..models import MigrationRow, WaveMemberRow, WaveRow
from . import services

log = logging.getLogger(__name__)
RUNNING, SCHEDULED, PAUSED = WaveState.RUNNING.value, WaveState.SCHEDULED.value, WaveState.PAUSED.value
_advancing: contextvars.ContextVar[frozenset] = contextvars.ContextVar("waves_advancing", default=frozenset())


def advance(wave_id: int) -> str | None:
    """Bring the wave up to date: start it when due, start its next migrations while slots are free, end it
    when nothing more will start. Returns its state (None: no such wave)."""
    token = _advancing.set(_advancing.get() | {wave_id})
    try:
        for _ in range(MAX_MEMBERS + 2):
            if not _step(wave_id):
                break
    finally:
        _advancing.reset(token)
    row = db.session.get(WaveRow, wave_id, populate_existing=True)
    state = row.state if row else None
    db.session.rollback()
    return state


def advance_now(wave_id: int) -> None:
    """After a person's change (committed): advance at once; should that fail, the maintenance loop will."""
    try:
        advance(wave_id)
    except Exception:
        log.exception("advancing wave %s failed; the maintenance loop tries again", wave_id)
        db.session.rollback()


def _step(wave_id: int) -> bool:
    """One locked step; True when it changed something and another step may follow."""
    session, now = db.session, utcnow()
    row = services.locked(wave_id, SCHEDULED, RUNNING, PAUSED)
    if row is None:
        return False
    if row.state == SCHEDULED:
        if row.start_at is not None and row.start_at > now:
            session.rollback()
            return False
        row.state, row.started_at = RUNNING, now
        audit.record("wave.start", f"wave:{row.id}", start_at=row.start_at.isoformat() if row.start_at else None)
        session.commit()
        return True
    rows = services.members(wave_id)
    for member, migration in rows:
        if member.started_at is not None and member.outcome is None and MigrationState(migration.state).is_final:
            member.outcome = migration.state
    decision = plan(services.as_members(rows), row.max_parallel, row.stop_on_error)
    if decision.final is not None:  # a paused wave ends too once nothing more would start
        event = services.finish(row, decision.final)
        session.commit()
        services.queue_event(event)
        return False
    if not decision.start or row.state == PAUSED:
        session.commit()
        return False
    member = next(m for m, _ in rows if m.migration_id == decision.start[0])
    member.started_at, created_by = now, row.created_by
    try:
        migrations.run(member.migration_id, requested_by=created_by or None)  # commits the member's start too
    except PreflightFailed as exc:
        session.rollback()
        if {c["name"] for c in exc.checks} == {"exclusive_source"}:
            # its source is busy with another migration: wait for it (FIFO) and try again when that one ends.
            # (The refusal's audit entry was committed with the member's start: undo that start.)
            session.execute(sql_update(WaveMemberRow).where(WaveMemberRow.wave_id == wave_id,
                                                            WaveMemberRow.migration_id == member.migration_id,
                                                            WaveMemberRow.outcome.is_(None))
                            .values(started_at=None))
            session.commit()
            return False
        _refused(wave_id, member.migration_id, exc)
    except DomainError as exc:
        session.rollback()
        _refused(wave_id, member.migration_id, exc)
    return True


def _refused(wave_id: int, migration_id: int, exc: DomainError) -> None:
    """``run`` refused a member: it counts as started by the wave, and a migration left ``not_started`` ends in
    ``error`` with the reason (so the wave's counts tell the truth and the wave goes on, or stops)."""
    session = db.session
    if services.locked(wave_id) is None:
        return
    member = session.get(WaveMemberRow, (wave_id, migration_id), populate_existing=True)
    if member is None:
        session.rollback()
        return
    member.started_at = member.started_at or utcnow()
    migration = session.get(MigrationRow, migration_id, populate_existing=True)
    reason = refusal_text(exc)
    log.info("wave %s: migration %s refused: %s", wave_id, migration_id, reason)
    if migration is not None and migration.state == MigrationState.NOT_STARTED.value:
        member.outcome = MigrationState.ERROR.value
        migrations.end((MigrationRow.id == migration_id) & (MigrationRow.state == MigrationState.NOT_STARTED.value),
                       MigrationState.ERROR, f"preflight failed: {reason}")  # commits
    else:
        session.commit()


def tick(now=None) -> dict:
    """Maintenance: start the scheduled waves that are due and advance the running and paused ones."""
    now = now or utcnow()
    session = db.session
    due = list(session.scalars(select(WaveRow.id).where(or_(
        WaveRow.state.in_((RUNNING, PAUSED)),
        (WaveRow.state == SCHEDULED) & (WaveRow.start_at.is_(None) | (WaveRow.start_at <= now))))
        .order_by(WaveRow.id)))
    session.rollback()
    states = [advance(wave_id) for wave_id in due]
    return {"advanced": len(due), "ended": sum(1 for s in states if s and WaveState(s).is_final)}


def migration_ended(migration_id: int) -> None:
    """A migration ended: advance the running (or paused) waves that started it. Never raises (called by
    ``migrations.services.end`` after its commit)."""
    session = db.session
    try:
        waves = list(session.scalars(
            select(WaveMemberRow.wave_id).join(WaveRow, WaveRow.id == WaveMemberRow.wave_id)
            .where(WaveMemberRow.migration_id == migration_id, WaveMemberRow.started_at.is_not(None),
                   WaveRow.state.in_((RUNNING, PAUSED)))))
        session.rollback()
        for wave_id in waves:
            if wave_id not in _advancing.get():  # the step that is running it goes on by itself
                advance(wave_id)
    except Exception:  # the migration's end is recorded already: the maintenance loop catches up
        log.exception("advancing the waves of migration %s failed", migration_id)
        session.rollback()
