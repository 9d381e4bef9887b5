"""Events: record (then queue; ``jobs.py`` delivers them), sweep, the inbox; never lost, never resent."""
from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any, Mapping

from flask import current_app, url_for
from redis.exceptions import RedisError
from rq.job import JobStatus
from sqlalchemy import func, select

from ..audit import services as audit
from ..db import update as sql_update
from ..db import utcnow
from .. import inputs
from ..domain.errors import Forbidden, InvalidStateError, InvalidTransition, NotFound
from ..domain.events import EventSource, EventStatus, check_new
from ..extensions import db, enqueue, job_statuses
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


def _job_id(event_id: str) -> str:
    return f"event-{event_id}"  # one id per event: the sweeper can see a job still waiting in the queue


def queue(event_id: str) -> None:
    """Queue delivery; if Redis is away the event stays pending and the sweeper queues it later."""
    try:
        enqueue(jobs.send_notification, event_id, job_id=_job_id(event_id), job_timeout=60, result_ttl=60,
                failure_ttl=86400)
    except RedisError as exc:
        log.warning("event %s stays pending until Redis is back: %s", event_id, exc)


def create(data: Any) -> EventRow:
    clean = check_new(data)
    row = add(clean["user_id"], clean["description"])
    audit.record("event.create", f"event:{row.id}", user_id=row.user_id)
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
    """Maintenance: queue again events pending for longer than EVENT_SWEEP_SECONDS (lost with Redis or a worker)."""
    now = now or utcnow()
    stale = now - timedelta(seconds=current_app.config["EVENT_SWEEP_SECONDS"])
    session = db.session
    ids = list(session.scalars(select(EventRow.id).where(EventRow.status == PENDING, EventRow.queued_at < stale)
                               .limit(1000)))
    ids = [i for i, status in zip(ids, job_statuses(_job_id(i) for i in ids))
           if status not in WAITING]  # a backlog is not a loss
    if ids:
        session.execute(sql_update(EventRow).where(EventRow.id.in_(ids), EventRow.status == PENDING)
                        .values(queued_at=now))
    session.commit()
    for event_id in ids:
        queue(event_id)
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
