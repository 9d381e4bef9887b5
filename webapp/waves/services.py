"""Waves: create, pause, resume, cancel (each audited); the engine that starts their migrations is ``engine.py``.

The engine is ``engine.advance(wave_id)``: idempotent, and safe from many processes at once. Each of its steps first
takes the wave row's write lock (an UPDATE: a row lock on PostgreSQL; SQLite's one write lock, every
transaction being ``BEGIN IMMEDIATE``), then reads the members and starts at most one migration in that same
transaction (``migrations.services.run`` commits it): two processes never both see a free slot. It is called
by the maintenance loop (``tick``: due scheduled waves, running ones), right after a migration ends
(``migration_ended``, from ``migrations.services.after_end``), and by ``create`` and ``resume``.
"""
from __future__ import annotations

import logging

from sqlalchemy import select

from .. import inputs
from ..audit import services as audit
from ..db import update as sql_update
from ..db import utcnow
from ..domain.errors import InvalidStateError, NotFound
from ..domain.events import EventSource
from ..domain.migration import MigrationState
from ..domain.waves import UNFINISHED, Member, WaveState, check_action, counts, member_problem
from ..events import services as events
from ..extensions import db
from ..migrations import services as migrations
from ..models import MigrationRow, WaveMemberRow, WaveRow
from ..pagination import Page, paginate
from . import engine

log = logging.getLogger(__name__)
RUNNING, SCHEDULED, PAUSED = WaveState.RUNNING.value, WaveState.SCHEDULED.value, WaveState.PAUSED.value


# --- reading -------------------------------------------------------------------------------------

def get(wave_id: int) -> WaveRow:
    row = db.session.get(WaveRow, wave_id)
    if row is None:
        raise NotFound("wave")
    return row


def list_page(page: int, per_page: int) -> Page:
    return paginate(db.session, select(WaveRow), page, per_page, key=WaveRow.id, descending=True)


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
        engine.advance_now(row.id)
        session.refresh(row)
    return row


def locked(wave_id: int, *states: str) -> WaveRow | None:
    """The wave, its row write-locked for this transaction (None when it is not in one of ``states``)."""
    session = db.session
    where = [WaveRow.id == wave_id] + ([WaveRow.state.in_(states)] if states else [])
    if not session.execute(sql_update(WaveRow).where(*where).values(updated_at=utcnow())).rowcount:
        session.rollback()
        return None
    return session.get(WaveRow, wave_id, populate_existing=True)


def _act(wave_id: int, action: str) -> WaveRow:
    row = locked(wave_id)
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
    engine.advance_now(wave_id)
    db.session.refresh(row)
    return row


def cancel(wave_id: int) -> WaveRow:
    """Ended at once; the migrations it started that still run are cancelled; those never started stay so."""
    row = _act(wave_id, "cancel")
    event = finish(row, WaveState.CANCELLED)
    db.session.commit()
    queue_event(event)
    for member, migration in members(wave_id):
        if member.started_at is not None and migration.state == MigrationState.RUNNING.value:
            try:
                migrations.cancel(migration.id)
            except InvalidStateError:
                db.session.rollback()  # it ended meanwhile
    db.session.refresh(row)
    return row


def finish(row: WaveRow, state: WaveState):
    """Record the wave's end and tell its creator (the caller commits, then ``_queue``s the event)."""
    row.state, row.finished_at = state.value, utcnow()
    tally = counts(as_members(members(row.id)))
    total = sum(tally.values())
    if state is not WaveState.CANCELLED:
        audit.record("wave.end", f"wave:{row.id}", state=state.value, **tally)
    return events.notify(row.created_by, f"Wave #{row.id} ({row.name}) ended {state.value}: "
                         f"{tally['success']} of {total} migrations succeeded, {tally['error']} failed.",
                         EventSource.WAVE, "waves.detail", wave_id=row.id)


def queue_event(event) -> None:
    if event:
        events.queue(event.id)
