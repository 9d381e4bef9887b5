"""The delivery job: what a worker runs for one event. Takes its id; sends it through every channel once."""
from __future__ import annotations

import logging
import threading

from flask import current_app
from redis.exceptions import LockError, RedisError

from ..db import update as sql_update
from ..db import utcnow
from ..domain.events import EventStatus
from ..extensions import db, queues
from ..models import EventRow
from . import channels, services

log = logging.getLogger(__name__)
PENDING = EventStatus.PENDING.value


def send_notification(event_id: str) -> str:
    """Deliver a pending event through every channel, then mark it processed (or failed)."""
    ttl = max(0.5, min(float(current_app.config["EVENT_SWEEP_SECONDS"]), LEASE_SECONDS))
    lease = DeliveryLease(queues.redis, event_id, ttl)
    if not lease.acquire(renew=bool(current_app.config.get("NOTIFY_WEBHOOK_URL"))):
        return "busy"  # another worker is delivering it; if that one dies, the sweeper queues it again
    try:
        return _deliver(event_id)
    finally:
        lease.release()


LEASE_SECONDS = 3.0  # at most: a dead worker's lease lapses this soon, so the sweeper's next job can deliver


class DeliveryLease:
    """Held in Redis while one worker delivers an event, renewed every third of its life by a thread.

    The sweeper queues again events pending for long, including one being delivered right now (a webhook may
    take seconds); the second job must then stand back rather than send the event twice. If the worker dies,
    the lease lapses within ``ttl`` seconds and the sweeper's next job delivers the event.
    """

    def __init__(self, connection, event_id: str, ttl: float):
        self.lock = connection.lock(f"cutover:event-delivery:{event_id}", timeout=ttl, thread_local=False)
        self.ttl, self.stopped = ttl, threading.Event()
        self.thread = threading.Thread(target=self._renew, name=f"lease-{event_id}", daemon=True)

    def acquire(self, renew: bool = True) -> bool:
        """Take the lease; ``renew`` keeps it alive while a slow channel (the webhook) works."""
        if not self.lock.acquire(blocking=False):
            return False
        if renew:
            self.thread.start()
        return True

    def _renew(self) -> None:
        while not self.stopped.wait(self.ttl / 3):
            try:
                self.lock.reacquire()
            except (LockError, RedisError) as exc:
                log.warning("could not renew the delivery lease of %s: %s", self.lock.name, exc)

    def release(self) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join()
        try:
            self.lock.release()
        except (LockError, RedisError):
            pass  # it lapses by itself


def _deliver(event_id: str) -> str:
    session = db.session
    row = session.get(EventRow, event_id)
    if row is None or row.status != PENDING:
        session.rollback()
        return "skipped"  # processed events are never sent again
    event = services.as_json(row)
    attempts = row.attempts + 1
    session.commit()  # end the read transaction: hold no lock (on SQLite, the whole database's) while sending
    try:
        channels.post_webhook(event)
    except channels.DeliveryError as exc:
        session.execute(sql_update(EventRow).where(EventRow.id == event_id, EventRow.status == PENDING).values(
            status=EventStatus.FAILED.value, attempts=attempts, last_error=str(exc)))
        session.commit()
        return "failed"
    channels.write_log(row)
    channels.add_to_inbox(row)
    session.execute(sql_update(EventRow).where(EventRow.id == event_id, EventRow.status == PENDING).values(
        status=EventStatus.PROCESSED.value, attempts=attempts, processed_at=utcnow(), last_error=None))
    session.commit()
    return "processed"
