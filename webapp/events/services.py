"""Events: record (then queue; ``jobs.py`` delivers them), sweep, the inbox; never lost, never resent."""
from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any, Mapping

from flask import current_app, url_for
from redis.exceptions import RedisError
from rq.job import JobStatus
from sqlalchemy import func, insert, select

from ..audit import services as audit
from ..db import update as sql_update
from ..db import utcnow
from .. import inputs
from ..domain.errors import Forbidden, InvalidStateError, InvalidTransition, NotFound
from ..domain.events import EventSource, EventStatus, check_new
from ..extensions import db, enqueue, job_status, queues
from ..models import EventRow, NotificationRow
from ..pagination import Page, paginate
from . import jobs

log = logging.getLogger(__name__)
PENDING = EventStatus.PENDING.value
WAITING = (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED)


def _iso(value):
    return value.isoformat() if value else None


def as_json(row: EventRow) -> dict:
    return {"id": row.id, "user_id": row.user_id, "description": row.description, "status": row.status,
            "source": row.source, "link": row.link, "attempts": row.attempts, "last_error": row.last_error,
            "created_at": _iso(row.created_at), "processed_at": _iso(row.processed_at)}


def get(event_id: str) -> EventRow:
    try:
        key = str(uuid.UUID(event_id))
    except (ValueError, TypeError, AttributeError):
        raise NotFound("event") from None
    row = db.session.get(EventRow, key)
    if row is None:
        raise NotFound("event")
    return row


def add(user_id: str, description: str, source: EventSource = EventSource.API, link: str | None = None) -> EventRow:
    """Add an event to the current transaction; the caller commits, then calls ``queue``."""
    row = EventRow(id=str(uuid.uuid4()), user_id=user_id, description=description, source=source.value, link=link,
                   status=PENDING, attempts=0, created_at=utcnow(), queued_at=utcnow())
    db.session.add(row)
    return row


DRAIN_FLAG_SECONDS = 600  # a flag whose job was lost goes by itself; the sweeper replaces it sooner


def queue(event_id: str | None = None) -> None:
    """Have the event delivered: a drain job delivers every pending event (``wake``). The caller committed."""
    wake()


def wake(force: bool = False) -> None:
    """Queue a drain job unless one is already waiting (``jobs.DRAIN_FLAG``, set with NX; the job deletes it
    before it reads, so it reads every event committed before a create found the flag set). ``force``: queue one
    whatever the flag says. If Redis is away, the events stay pending and the sweeper queues a drain later."""
    redis, job_id = queues.redis, f"event-drain-{uuid.uuid4().hex}"
    try:
        if not redis.set(jobs.DRAIN_FLAG, job_id, nx=not force, ex=DRAIN_FLAG_SECONDS):
            return  # a drain job is waiting: it will read this event
        try:
            enqueue(jobs.deliver_pending, job_id=job_id, job_timeout=120, result_ttl=60, failure_ttl=86400)
        except RedisError:
            redis.delete(jobs.DRAIN_FLAG)  # no job behind it: let the next create queue one
            raise
    except RedisError as exc:
        log.warning("pending events wait until Redis is back: %s", exc)


def drain_waiting() -> bool:
    """Whether the drain job named by the flag is waiting in the queue (False if Redis cannot say)."""
    try:
        job_id = queues.redis.get(jobs.DRAIN_FLAG)
    except RedisError as exc:
        log.warning("cannot read the drain flag now: %s", exc)
        return False
    return bool(job_id) and job_status(job_id.decode()) in WAITING


def create(data: Any) -> EventRow:
    clean = check_new(data)
    now = utcnow()
    values = {"id": str(uuid.uuid4()), "user_id": clean["user_id"], "description": clean["description"],
              "source": EventSource.API.value, "link": None, "status": PENDING, "attempts": 0, "created_at": now,
              "queued_at": now}
    db.session.execute(insert(EventRow.__table__).values(**values))  # two plain INSERTs: no unit of work
    audit.record_now("event.create", f"event:{values['id']}", user_id=values["user_id"])
    row = EventRow(**values, last_error=None, processed_at=None)  # what was written, for the answer
    db.session.commit()  # committed before it is queued: nothing is lost if Redis is down
    queue(row.id)
    return row


def notify(user_id: str | None, description: str, source: EventSource, endpoint: str, **values) -> EventRow | None:
    """An event the app raises itself (a run or migration ended), linked to its page; caller commits."""
    if not user_id:
        return None
    return add(user_id[:128], description[:2000], source, page_url(endpoint, **values))


def page_url(endpoint: str, **values) -> str:
    """A page's path, also from a worker (no request there)."""
    with current_app.test_request_context("/"):
        return url_for(endpoint, **values)


def list_page(page: int, per_page: int, filters: Mapping[str, str]) -> Page:
    stmt = select(EventRow).order_by(EventRow.created_at.desc(), EventRow.id)
    for name, value in filters.items():
        stmt = stmt.where(getattr(EventRow, name) == value)
    return paginate(db.session, stmt, page, per_page)


def update(event_id: str, data: Any, actor) -> EventRow:
    """Edit user_id/description while pending; move status along its allowed transitions (admins)."""
    row = get(event_id)
    edits, target = inputs.event_changes(data, as_json(row))
    status = EventStatus(row.status)
    if target is not status and not actor.is_admin:
        raise Forbidden("Only an admin may change an event's status.")
    if edits and status is not EventStatus.PENDING:
        message = f"Only a pending event can be edited; this one is {status.value}."
        raise InvalidTransition(message, {name: [message] for name in edits})
    session = db.session
    values = dict(edits)
    if target is not status:
        values.update(status=target.value, processed_at=utcnow() if target is EventStatus.PROCESSED else None)
        if target is EventStatus.PENDING:
            values.update(queued_at=utcnow(), last_error=None)
    if values:
        if edits:
            audit.record("event.update", f"event:{row.id}", **{k: v for k, v in edits.items() if k == "user_id"})
        if target is not status:
            audit.record("event.status", f"event:{row.id}", old=status.value, new=target.value)
        written = session.execute(sql_update(EventRow).where(EventRow.id == row.id, EventRow.status == status.value)
                                  .values(**values)).rowcount
        session.commit()
        if not written:
            raise InvalidStateError("The event changed meanwhile (a worker delivered it); read it again.")
        session.refresh(row)
        if target is EventStatus.PENDING and status is not EventStatus.PENDING:
            queue(row.id)
    return row


def sweep(now: datetime | None = None) -> int:
    """Maintenance: queue a drain job for events pending longer than EVENT_SWEEP_SECONDS (lost with Redis, or left
    by a killed worker, whose leases lapse) unless one is waiting; how many such events it found."""
    now = now or utcnow()
    stale = now - timedelta(seconds=current_app.config["EVENT_SWEEP_SECONDS"])
    session = db.session
    ids = list(session.scalars(select(EventRow.id).where(EventRow.status == PENDING, EventRow.queued_at < stale)
                               .limit(1000)))
    if not ids or drain_waiting():  # a backlog is not a loss
        session.commit()
        return 0
    session.execute(sql_update(EventRow).where(EventRow.id.in_(ids), EventRow.status == PENDING)
                    .values(queued_at=now))
    session.commit()
    wake(force=True)  # the flag may name a lost job: replace it
    return len(ids)


# --- the inbox -------------------------------------------------------------------------------------

def inbox(user_id: str, limit: int = 100) -> list[NotificationRow]:
    return list(db.session.scalars(select(NotificationRow).where(NotificationRow.user_id == user_id)
                                   .order_by(NotificationRow.id.desc()).limit(limit)))


def unread_count(user_id: str | None) -> int:
    if not user_id:
        return 0
    return db.session.scalar(select(func.count()).select_from(NotificationRow).where(
        NotificationRow.user_id == user_id, NotificationRow.read_at.is_(None))) or 0


def mark_read(user_id: str) -> None:
    db.session.execute(sql_update(NotificationRow).where(NotificationRow.user_id == user_id,
                                                         NotificationRow.read_at.is_(None)).values(read_at=utcnow()))
    db.session.commit()


def inbox_owner(actor, user_id: str | None) -> str:
    """Whose inbox to open: one's own; another's (``?user_id=``) only for an admin."""
    wanted = (user_id or "").strip()[:128] or actor.username
    if wanted != actor.username and not actor.is_admin:
        raise Forbidden("You can open only your own inbox.")
    return wanted


def open_inbox(user_id: str | None, actor) -> list[NotificationRow]:
    """The user's notifications, newest first; opening one's own inbox marks them read (an admin
    looking into another's leaves them unread)."""
    if not user_id:
        return []
    items = inbox(user_id)
    unread = {n.id for n in items if n.read_at is None}
    if user_id == actor.username:
        mark_read(user_id)
    for item in items:
        item.unread = item.id in unread
    return items
