"""The delivery jobs: ``deliver_pending`` drains every pending event in batches (what the app queues now);
``send_notification`` delivers one event by its id (jobs queued by earlier releases). Both take a per-event lease
in Redis first, so no event is sent by two workers at once, and never send an event that is no longer pending."""
from __future__ import annotations

import logging
import threading
import time
import uuid

from flask import current_app
from redis.exceptions import LockError, RedisError
from sqlalchemy import select

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
    lease = DeliveryLease(queues.redis, event_id, _lease_ttl())
    if not lease.acquire(renew=bool(current_app.config.get("NOTIFY_WEBHOOK_URL"))):
        return "busy"  # another worker is delivering it; if that one dies, the sweeper queues it again
    try:
        return _deliver(event_id)
    finally:
        lease.release()


LEASE_SECONDS = 3.0  # at most: a dead worker's lease lapses this soon, so the sweeper's next job can deliver
LEASE_KEY = "cutover:event-delivery:{}"
DRAIN_FLAG = "cutover:event-drain:waiting"  # names the drain job waiting in the queue, while one waits
DRAIN_BATCH = 100  # events per transaction (the SQLite write lock is held for one batch)
DRAIN_WINDOW = 4  # pending events read per pass: this many batches, so that concurrent drains take different ones
DRAIN_SECONDS = 20.0  # then the drain queues its successor and ends, far from its job timeout


def _lease_ttl() -> float:
    return max(0.5, min(float(current_app.config["EVENT_SWEEP_SECONDS"]), LEASE_SECONDS))


def deliver_pending() -> int:
    """The drain job: deliver pending events, a batch per transaction, until none is left that another worker
    is not delivering right now; how many it delivered."""
    redis = queues.redis
    # First, before reading: an event committed before another create found this flag set (and so queued no
    # job) is read below. Deleted, the flag lets the next create queue a drain job again.
    redis.delete(DRAIN_FLAG)
    webhook, ttl, started, delivered = bool(current_app.config.get("NOTIFY_WEBHOOK_URL")), _lease_ttl(), \
        time.monotonic(), 0
    while True:
        candidates = _pending_ids(DRAIN_BATCH * DRAIN_WINDOW)
        lease = BatchLease(redis, ttl)
        if not candidates or not lease.claim(candidates, DRAIN_BATCH):
            return delivered  # none, or all being delivered: if that worker dies, the sweeper queues a drain
        try:
            delivered += _deliver_each(lease.ids) if webhook else _deliver_batch(lease.ids)
        finally:
            lease.release()
        if time.monotonic() - started > DRAIN_SECONDS:
            services.wake()  # a successor goes on with the rest; this job ends well before its timeout
            return delivered


def _pending_ids(limit: int) -> list[str]:
    session = db.session
    ids = list(session.scalars(select(EventRow.id).where(EventRow.status == PENDING)
                               .order_by(EventRow.queued_at, EventRow.id).limit(limit)))
    session.commit()  # hold no lock while claiming
    return ids


def _deliver_batch(ids: list[str]) -> int:
    """Log, inbox and ``processed`` for the leased events still pending, in one transaction."""
    session = db.session
    rows = list(session.scalars(select(EventRow).where(EventRow.id.in_(ids), EventRow.status == PENDING)
                                .with_for_update()))  # SQLite: BEGIN IMMEDIATE holds the write lock already
    if not rows:
        session.rollback()
        return 0
    written = session.execute(sql_update(EventRow).where(EventRow.id.in_([r.id for r in rows]),
                                                         EventRow.status == PENDING)
                              .values(status=EventStatus.PROCESSED.value, attempts=EventRow.attempts + 1,
                                      processed_at=utcnow(), last_error=None)).rowcount
    if written != len(rows):  # cannot happen with the rows locked; if it does, send nothing rather than twice
        session.rollback()
        raise RuntimeError(f"{len(rows) - written} of {len(rows)} events changed while locked")
    channels.add_to_inbox(*rows)
    channels.write_log(*rows)  # before the commit: a worker dying here leaves them pending (at least once)
    session.commit()
    return len(rows)


def _deliver_each(ids: list[str]) -> int:
    """The webhook is slow and may fail: one event at a time, each failure failing only its event."""
    return sum(_deliver(event_id) == "processed" for event_id in ids)


_RENEW = "local n = 0 for _, k in ipairs(KEYS) do if redis.call('get', k) == ARGV[1] then " \
         "redis.call('pexpire', k, ARGV[2]) n = n + 1 end end return n"
_RELEASE = "for _, k in ipairs(KEYS) do if redis.call('get', k) == ARGV[1] then redis.call('del', k) end end " \
           "return 0"


class BatchLease:
    """The delivery leases of many events, taken with one pipeline and held by one token; the same keys as
    ``DeliveryLease``, so neither kind of job delivers an event the other holds. Renewed by a thread."""

    def __init__(self, connection, ttl: float):
        self.redis, self.ttl, self.token, self.ids = connection, ttl, uuid.uuid4().hex, []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._renew, name="lease-batch", daemon=True)

    def claim(self, candidates: list[str], limit: int) -> list[str]:
        """Lease up to ``limit`` of ``candidates``, ``limit`` at a time, skipping those another worker holds."""
        for lo in range(0, len(candidates), limit):
            chunk = candidates[lo:lo + limit]
            pipe = self.redis.pipeline(transaction=False)
            for event_id in chunk:
                pipe.set(LEASE_KEY.format(event_id), self.token, nx=True, px=int(self.ttl * 1000))
            self.ids = [event_id for event_id, won in zip(chunk, pipe.execute()) if won]
            if self.ids:
                self.thread.start()
                return self.ids
        return []

    def _keys(self) -> list[str]:
        return [LEASE_KEY.format(i) for i in self.ids]

    def _renew(self) -> None:
        while not self.stopped.wait(self.ttl / 3):
            try:
                self.redis.eval(_RENEW, len(self.ids), *self._keys(), self.token, int(self.ttl * 1000))
            except RedisError as exc:
                log.warning("could not renew the delivery leases of %d events: %s", len(self.ids), exc)

    def release(self) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join()
        try:
            self.redis.eval(_RELEASE, len(self.ids), *self._keys(), self.token)
        except RedisError:
            pass  # they lapse by themselves


class DeliveryLease:
    """Held in Redis while one worker delivers an event, renewed every third of its life by a thread.

    The sweeper queues again events pending for long, including one being delivered right now (a webhook may
    take seconds); the second job must then stand back rather than send the event twice. If the worker dies,
    the lease lapses within ``ttl`` seconds and the sweeper's next job delivers the event.
    """

    def __init__(self, connection, event_id: str, ttl: float):
        self.lock = connection.lock(LEASE_KEY.format(event_id), timeout=ttl, thread_local=False)
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
