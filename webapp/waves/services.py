"""Waves: create, pause, resume, cancel (each audited), and the engine that starts their migrations.

The engine is ``advance(wave_id)``: idempotent, and safe from many processes at once. Each of its steps first
takes the wave row's write lock (an UPDATE: a row lock on PostgreSQL; SQLite's one write lock, every
transaction being ``BEGIN IMMEDIATE``), then reads the members and starts at most one migration in that same
transaction (``migrations.services.run`` commits it): two processes never both see a free slot. It is called
by the maintenance loop (``tick``: due scheduled waves, running ones), right after a migration ends
(``migration_ended``, from ``migrations.services.end``), and by ``create`` and ``resume``.
"""
from __future__ import annotations

import contextvars
import logging

from sqlalchemy import or_, select

from .. import inputs
from ..audit import services as audit
from ..db import update as sql_update
from ..db import utcnow
from ..domain.errors import DomainError, InvalidStateError, NotFound, PreflightFailed
from ..domain.events import EventSource
from ..domain.migration import MigrationState
from ..domain.waves import (MAX_MEMBERS, UNFINISHED, Member, WaveState, check_action, counts, member_problem, plan,
                            refusal_text)
from ..events import services as events
from ..extensions import db
from ..migrations import services as migrations
from ..models import MigrationRow, WaveMemberRow, WaveRow
from ..pagination import Page, paginate

log = logging.getLogger(__name__)
RUNNING, SCHEDULED, PAUSED = WaveState.RUNNING.value, WaveState.SCHEDULED.value, WaveState.PAUSED.value
_advancing: contextvars.ContextVar[frozenset] = contextvars.ContextVar("waves_advancing", default=frozenset())


# --- reading -------------------------------------------------------------------------------------

def get(wave_id: int) -> WaveRow:
    row = db.session.get(WaveRow, wave_id)
    if row is None:
        raise NotFound("wave")
    return row


def list_page(page: int, per_page: int) -> Page:
    return paginate(db.session, select(WaveRow).order_by(WaveRow.id.desc()), page, per_page, key=WaveRow.id)


def members(wave_id: int) -> list[tuple[WaveMemberRow, MigrationRow]]:
    """The wave's members in their order, each with its migration."""
    return list(db.session.execute(
        select(WaveMemberRow, MigrationRow).join(MigrationRow, MigrationRow.id == WaveMemberRow.migration_id)
        .where(WaveMemberRow.wave_id == wave_id).order_by(WaveMemberRow.position)))


def as_members(rows) -> list[Member]:
    return [Member(m.migration_id, m.started_at is not None, migration.state) for m, migration in rows]


def _iso(value):
    return value.isoformat() if value else None


def as_json(row: WaveRow, rows=None) -> dict:
    rows = members(row.id) if rows is None else rows
    return {"id": row.id, "name": row.name, "state": row.state, "max_parallel": row.max_parallel,
            "start_at": _iso(row.start_at), "stop_on_error": row.stop_on_error, "counts": counts(as_members(rows)),
            "migrations": [m.migration_id for m, _ in rows], "created_at": _iso(row.created_at), "started_at": _iso(row.started_at),
            "finished_at": _iso(row.finished_at)}


def page_json(page: Page) -> dict:
    return page.as_json(as_json)


# --- writing -------------------------------------------------------------------------------------

def _problems(ids: list[int]) -> list[str]:
    """What keeps each listed migration out of a new wave. Their rows are locked first, so two waves created
    at once with the same migration are checked one after the other."""
    session = db.session
    states = dict(session.execute(select(MigrationRow.id, MigrationRow.state)
                                  .where(MigrationRow.id.in_(ids)).with_for_update()).all())
    taken = {mid: (wid, name) for mid, wid, name in session.execute(
        select(WaveMemberRow.migration_id, WaveRow.id, WaveRow.name).join(WaveRow, WaveRow.id == WaveMemberRow.wave_id)
        .where(WaveMemberRow.migration_id.in_(ids), WaveRow.state.in_(UNFINISHED)))}
    return [p for mid in ids if (p := member_problem(mid, states.get(mid), taken.get(mid)))]


def create(data, created_by: str) -> WaveRow:
    """A new wave (``scheduled``); with no ``start_at`` (or one already past) it starts at once."""
    clean = inputs.wave(data, _problems)
    session = db.session
    row = WaveRow(name=clean["name"], state=SCHEDULED, max_parallel=clean["max_parallel"],
                  start_at=clean["start_at"], stop_on_error=clean["stop_on_error"], created_by=created_by[:64])
    session.add(row)
    session.flush()
    session.add_all(WaveMemberRow(wave_id=row.id, migration_id=mid, position=i)
                    for i, mid in enumerate(clean["migration_ids"]))
    audit.record("wave.create", f"wave:{row.id}", name=row.name, migration_ids=clean["migration_ids"],
                 max_parallel=row.max_parallel, start_at=_iso(row.start_at), stop_on_error=row.stop_on_error)
    session.commit()
    if row.start_at is None or row.start_at <= utcnow():
        _advance_now(row.id)
        session.refresh(row)
    return row


def _locked(wave_id: int, *states: str) -> WaveRow | None:
    """The wave, its row write-locked for this transaction (None when it is not in one of ``states``)."""
    session = db.session
    where = [WaveRow.id == wave_id] + ([WaveRow.state.in_(states)] if states else [])
    if not session.execute(sql_update(WaveRow).where(*where).values(updated_at=utcnow())).rowcount:
        session.rollback()
        return None
    return session.get(WaveRow, wave_id, populate_existing=True)


def _act(wave_id: int, action: str) -> WaveRow:
    row = _locked(wave_id)
    if row is None:
        raise NotFound("wave")
    old = WaveState(row.state)
    try:
        new = check_action(action, old, started=row.started_at is not None)
    except InvalidStateError:
        db.session.rollback()
        raise
    row.state = new.value
    audit.record(f"wave.{action}", f"wave:{row.id}", old=old.value, new=new.value)
    return row


def pause(wave_id: int) -> WaveRow:
    """No new starts; what runs finishes."""
    row = _act(wave_id, "pause")
    db.session.commit()
    return row


def resume(wave_id: int) -> WaveRow:
    row = _act(wave_id, "resume")
    db.session.commit()
    _advance_now(wave_id)
    db.session.refresh(row)
    return row


def cancel(wave_id: int) -> WaveRow:
    """Ended at once; the migrations it started that still run are cancelled; those never started stay so."""
    row = _act(wave_id, "cancel")
    event = _finish(row, WaveState.CANCELLED)
    db.session.commit()
    _queue(event)
    for member, migration in members(wave_id):
        if member.started_at is not None and migration.state == MigrationState.RUNNING.value:
            try:
                migrations.cancel(migration.id)
            except InvalidStateError:
                db.session.rollback()  # it ended meanwhile
    db.session.refresh(row)
    return row


def _finish(row: WaveRow, state: WaveState):
    """Record the wave's end and tell its creator (the caller commits, then ``_queue``s the event)."""
    row.state, row.finished_at = state.value, utcnow()
    tally = counts(as_members(members(row.id)))
    total = sum(tally.values())
    if state is not WaveState.CANCELLED:
        audit.record("wave.end", f"wave:{row.id}", state=state.value, **tally)
    return events.notify(row.created_by, f"Wave #{row.id} ({row.name}) ended {state.value}: "
                         f"{tally['success']} of {total} migrations succeeded, {tally['error']} failed.",
                         EventSource.WAVE, "waves.detail", wave_id=row.id)


def _queue(event) -> None:
    if event:
        events.queue(event.id)


# --- the engine ----------------------------------------------------------------------------------

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


def _advance_now(wave_id: int) -> None:
    """After a person's change (committed): advance at once; should that fail, the maintenance loop will."""
    try:
        advance(wave_id)
    except Exception:
        log.exception("advancing wave %s failed; the maintenance loop tries again", wave_id)
        db.session.rollback()


def _step(wave_id: int) -> bool:
    """One locked step; True when it changed something and another step may follow."""
    session, now = db.session, utcnow()
    row = _locked(wave_id, SCHEDULED, RUNNING, PAUSED)
    if row is None:
        return False
    if row.state == SCHEDULED:
        if row.start_at is not None and row.start_at > now:
            session.rollback()
            return False
        row.state, row.started_at = RUNNING, now
        audit.record("wave.start", f"wave:{row.id}", start_at=_iso(row.start_at))
        session.commit()
        return True
    rows = members(wave_id)
    for member, migration in rows:
        if member.started_at is not None and member.outcome is None and MigrationState(migration.state).is_final:
            member.outcome = migration.state
    decision = plan(as_members(rows), row.max_parallel, row.stop_on_error)
    if decision.final is not None:  # a paused wave ends too once nothing more would start
        event = _finish(row, decision.final)
        session.commit()
        _queue(event)
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
    if _locked(wave_id) is None:
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
