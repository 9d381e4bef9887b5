"""Worker wiring: every job runs in its own app context; a maintenance loop recovers lost work."""
from __future__ import annotations

import logging
import threading

from flask import Flask
from redis import Redis
from redis.exceptions import RedisError
from rq import SimpleWorker, Worker

from .extensions import Queues

log = logging.getLogger(__name__)


class AppContextMixin:
    """Give each job a fresh Flask app context (and so a fresh database session)."""

    def __init__(self, *args, app: Flask, **kwargs):
        super().__init__(*args, **kwargs)
        self.app = app

    def perform_job(self, job, queue):
        with self.app.app_context():
            return super().perform_job(job, queue)


class AppWorker(AppContextMixin, Worker):
    """Forks a work horse per job, so a crashing job never takes the worker down."""


class SimpleAppWorker(AppContextMixin, SimpleWorker):
    """Runs jobs in-process: for tests and benchmarks."""


def maintenance_tick(app: Flask) -> dict:
    """One pass of recovery work. Idempotent: every worker host may run it."""
    from .migrations import services as migrations

    with app.app_context():
        return {"migrations": migrations.reap()}


class Maintenance(threading.Thread):
    """Runs ``maintenance_tick`` every few seconds; a Redis key keeps hosts from doing it all at once."""

    def __init__(self, app: Flask, connection: Redis):
        super().__init__(name="cutover-maintenance", daemon=True)
        self.app, self.connection = app, connection
        self.interval = app.config["MAINTENANCE_INTERVAL_SECONDS"]
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                if self.connection.set("cutover:maintenance", "1", nx=True, px=int(self.interval * 900)):
                    maintenance_tick(self.app)
            except RedisError as exc:
                log.warning("maintenance skipped, Redis unavailable: %s", exc)
            except Exception:  # keep the loop alive whatever one pass hits
                log.exception("maintenance pass failed")


def start_worker(app: Flask, burst: bool = False) -> None:
    connection = Redis.from_url(app.config["REDIS_URL"])
    maintenance = Maintenance(app, connection)
    maintenance.start()
    try:
        AppWorker(list(Queues.NAMES), connection=connection, app=app).work(burst=burst, with_scheduler=False)
    finally:
        maintenance.stopped.set()
