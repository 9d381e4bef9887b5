"""Schedules: create, change, delete (each audited, by their owner or an admin), and ``tick``, which the
maintenance loop calls every few seconds to start the runs that are due.

``tick`` claims each due schedule with a fenced UPDATE (``next_due_at`` moves to the first due time after now
only where it still holds the value read), so two hosts never both fire the same due time; the run is created
in that same transaction, as the schedule's owner, with ``schedule_id`` set. At most one run of a schedule
waits at a time: when its previous run is still queued, the due time is skipped and counted in ``skipped``.
"""
from __future__ import annotations

import logging

from sqlalchemy import select

from .. import inputs
from ..audit import services as audit
from ..domain.accounts import Role
from ..db import update as sql_update
from ..db import utcnow
from ..domain.errors import DomainError, Forbidden, NotFound
from ..domain.runs import RunState
from ..domain.schedules import RECENT_RUNS, fire, next_due
from ..extensions import db
from ..models import EnvironmentRow, RunRow, ScheduleRow
from ..pagination import Page, paginate
from ..runs import services as runs
from ..runs import testfiles

log = logging.getLogger(__name__)
FIELDS = ("name", "cron", "test_files", "environment_id", "pool", "priority", "enabled")


# --- reading -------------------------------------------------------------------------------------

def get(schedule_id: int) -> ScheduleRow:
    row = db.session.get(ScheduleRow, schedule_id)
    if row is None:
        raise NotFound("schedule")
    return row


def list_page(page: int, per_page: int) -> Page:
    return paginate(db.session, select(ScheduleRow), page, per_page, key=ScheduleRow.id, descending=True)


def recent_runs(schedule_ids: list[int]) -> dict[int, list[RunRow]]:
    """The last ``RECENT_RUNS`` runs of each schedule, newest first."""
    found: dict[int, list[RunRow]] = {i: [] for i in schedule_ids}
    for sid in schedule_ids:
        found[sid] = list(db.session.scalars(select(RunRow).where(RunRow.schedule_id == sid)
                                             .order_by(RunRow.id.desc()).limit(RECENT_RUNS)))
    return found


def _iso(value):
    return value.isoformat() if value else None


def as_json(row: ScheduleRow, recent: list[RunRow] | None = None) -> dict:
    recent = recent_runs([row.id])[row.id] if recent is None else recent
    return {"id": row.id, "name": row.name, "owner": row.owner, "cron": row.cron, "test_files": row.test_files,
            "environment_id": row.environment_id, "pool": row.pool, "priority": row.priority,
            "enabled": row.enabled, "next_due_at": _iso(row.next_due_at), "last_due_at": _iso(row.last_due_at),
            "skipped": row.skipped, "runs": [r.id for r in recent], "created_at": _iso(row.created_at),
            "updated_at": _iso(row.updated_at)}


def page_json(page: Page) -> dict:
    recent = recent_runs([r.id for r in page.items])
    return page.as_json(lambda r: as_json(r, recent[r.id]))


# --- writing -------------------------------------------------------------------------------------

def _enabled(environment_id: int) -> bool:
    environment = db.session.get(EnvironmentRow, environment_id)
    return environment is not None and environment.enabled


def _check(data, partial: bool = False) -> dict:
    return inputs.schedule(data, testfiles.exists, _enabled, partial=partial, pool_exists=runs.pool_exists)


def create(data, owner: str) -> ScheduleRow:
    """A new schedule of ``owner``; enabled, its first due time is the first after now."""
    clean = _check(data)
    row = ScheduleRow(owner=owner[:64], skipped=0, **clean)
    row.next_due_at = next_due(row.cron, utcnow()) if row.enabled else None
    db.session.add(row)
    db.session.flush()
    audit.record("schedule.create", f"schedule:{row.id}", **{f: getattr(row, f) for f in FIELDS})
    db.session.commit()
    return row


def _mine(schedule_id: int, username: str, role: Role) -> ScheduleRow:
    row = get(schedule_id)
    if row.owner != username and role is not Role.ADMIN:
        raise Forbidden(f"Only {row.owner} (its owner) or an admin may change this schedule.")
    return row


def update(schedule_id: int, data, username: str, role: Role) -> ScheduleRow:
    """Change the fields sent; a new cron, or enabling, recomputes ``next_due_at`` from now."""
    row = _mine(schedule_id, username, role)
    clean = _check(data, partial=True)
    changed = {f: v for f, v in clean.items() if getattr(row, f) != v}
    for name, value in changed.items():
        setattr(row, name, value)
    if not row.enabled:
        row.next_due_at = None
    elif "cron" in changed or "enabled" in changed or row.next_due_at is None:
        row.next_due_at = next_due(row.cron, utcnow())
    if changed:
        audit.record("schedule.update", f"schedule:{row.id}", **changed)
    db.session.commit()
    return row


def delete(schedule_id: int, username: str, role: Role) -> None:
    row = _mine(schedule_id, username, role)
    audit.record("schedule.delete", f"schedule:{row.id}", name=row.name, owner=row.owner)
    db.session.delete(row)
    db.session.commit()


# --- the maintenance loop ------------------------------------------------------------------------

def tick(now=None) -> dict:
    """Fire every enabled schedule whose ``next_due_at`` has come: one run (or one skip) each."""
    now = now or utcnow()
    session = db.session
    due = list(session.execute(select(ScheduleRow.id, ScheduleRow.next_due_at).where(
        ScheduleRow.enabled.is_(True), ScheduleRow.next_due_at <= now).order_by(ScheduleRow.id)))
    session.rollback()
    outcomes = [_fire(sid, due_at, now) for sid, due_at in due]
    return {"started": outcomes.count("started"), "skipped": outcomes.count("skipped"),
            "failed": outcomes.count("failed")}


def _claim(schedule_id: int, due_at, now) -> ScheduleRow | None:
    """The schedule, its due time claimed in this transaction; None when another host claimed it first."""
    session = db.session
    row = session.get(ScheduleRow, schedule_id)
    if row is None:
        return None
    following = next_due(row.cron, now)
    if not session.execute(sql_update(ScheduleRow).where(
            ScheduleRow.id == schedule_id, ScheduleRow.enabled.is_(True), ScheduleRow.next_due_at == due_at)
            .values(next_due_at=following, last_due_at=due_at)).rowcount:
        session.rollback()
        return None
    return session.get(ScheduleRow, schedule_id, populate_existing=True)


def _fire(schedule_id: int, due_at, now) -> str | None:
    session = db.session
    row = _claim(schedule_id, due_at, now)
    if row is None:
        return None
    waits = session.scalar(select(RunRow.id).where(
        RunRow.schedule_id == schedule_id, RunRow.state == RunState.QUEUED.value).limit(1)) is not None
    if not fire(row.cron, due_at, now, waits).start:
        row.skipped = (row.skipped or 0) + 1
        session.commit()
        return "skipped"
    where = {"pool": row.pool} if row.pool else {"environment_id": row.environment_id}
    body = {**where, "test_files": row.test_files, "priority": row.priority}
    try:
        runs.create(body, row.owner, schedule_id=schedule_id)  # commits the claim with the run
        return "started"
    except DomainError as exc:  # e.g. its environment was disabled, its pool emptied or a file deleted since
        session.rollback()
        log.warning("schedule %s could not start a run: %s", schedule_id, exc)
        if _claim(schedule_id, due_at, now) is not None:
            audit.record("schedule.fail", f"schedule:{schedule_id}", due_at=_iso(due_at), error=str(exc)[:500])
            session.commit()
        return "failed"
