"""Worker wiring: every job runs in its own app context, its log lines carrying its id and its request's; a
maintenance loop recovers lost work; a heartbeat keeps the worker visibly alive (``/readyz``) even mid-job."""
from __future__ import annotations

import logging
import threading

from flask import Flask
from redis import Redis
from redis.exceptions import RedisError
from rq import SimpleWorker, Worker

from . import heap, logs
from .extensions import Queues

log = logging.getLogger(__name__)


class AppContextMixin:
    """Give each job a fresh Flask app context (and so a fresh database session)."""

    def __init__(self, *args, app: Flask, **kwargs):
        super().__init__(*args, **kwargs)
        self.app = app

    def perform_job(self, job, queue):
        with logs.job_context((job.meta or {}).get("request_id"), job.id), self.app.app_context():
            return super().perform_job(job, queue)


# Held by the maintenance thread while it works and by the worker while it forks: a work horse forked
# while that thread was inside SQLite (or any C library lock) would inherit the lock and hang forever.
FORK_LOCK = threading.Lock()


class AppWorker(AppContextMixin, Worker):
    """Forks a work horse per job, so a crashing job never takes the worker down."""

    def fork_work_horse(self, job, queue):
        with FORK_LOCK:
            return super().fork_work_horse(job, queue)


class SimpleAppWorker(AppContextMixin, SimpleWorker):
    """Runs jobs in-process, the default: caches stay warm, so a job costs a few ms instead of a fork's
    tens. pytest itself always runs in a subprocess; a job that crashes the worker is recovered like a
    lost worker (and the all-in-one runner restarts it)."""


def maintenance_tick(app: Flask) -> dict:
    """One pass of recovery work, then of retention (``retention.py``: rows deleted per kind, for metrics).
    Idempotent: every worker host may run it."""
    from . import retention
    from .environments import holds
    from .events import services as events
    from .migrations import reaper as migrations
    from .runs import dispatch as runs
    from .schedules import services as schedules
    from .waves import engine as waves

    with app.app_context():
        return {"migrations": migrations.reap(), "holds": holds.expire(), "runs": runs.reap(),
                "events": events.sweep(), "waves": waves.tick(), "schedules": schedules.tick(),
                "retention": retention.prune_if_due()}


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
                    with FORK_LOCK:
                        maintenance_tick(self.app)
            except RedisError as exc:
                log.warning("maintenance skipped, Redis unavailable: %s", exc)
            except Exception:  # keep the loop alive whatever one pass hits
                log.exception("maintenance pass failed")


HEARTBEAT_SECONDS = 10.0  # /readyz counts a worker that heartbeated in the last 30 s


class Heartbeat(threading.Thread):
    """RQ heartbeats only between jobs, and an idle worker only every ``worker_ttl - 15`` s (405 s): this
    thread heartbeats every few seconds while the worker is registered, during a long job too."""

    def __init__(self, worker: Worker, interval: float = HEARTBEAT_SECONDS):
        super().__init__(name="cutover-heartbeat", daemon=True)
        self.worker, self.interval = worker, interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            if self.worker.birth_date is None:  # not registered yet: a heartbeat now would block its birth
                continue
            try:
                with FORK_LOCK:
                    self.worker.heartbeat()
            except RedisError as exc:
                log.warning("heartbeat skipped, Redis unavailable: %s", exc)


def warm_up(app: Flask) -> None:
    """Load once, before forking, what every job needs: each work horse then starts warm."""
    from sqlalchemy import select
    from sqlalchemy.orm import configure_mappers

    from . import jobs  # noqa: F401  (the old names, for jobs queued by the previous release)
    from .events import jobs as event_jobs  # noqa: F401
    from .extensions import db, vault
    from .migrations import jobs as migration_jobs
    from .models import MigrationRow, RunRow, WorkloadRow
    from .runs import jobs as run_jobs  # noqa: F401

    configure_mappers()
    with app.app_context():
        vault.decrypt(vault.encrypt("warm-up"))
        for model in (MigrationRow, RunRow, WorkloadRow):
            db.session.execute(select(model).limit(1)).all()
        migration_jobs.run_migration(0)  # no such migration: compiles and caches the job's first statements
        db.session.rollback()


def start_worker(app: Flask, burst: bool = False) -> None:
    """Run jobs until stopped. ``WORKER_FORK`` picks a work horse per job instead of in-process jobs."""
    warm_up(app)
    heap.freeze()
    connection = Redis.from_url(app.config["REDIS_URL"])
    maintenance = Maintenance(app, connection)
    maintenance.start()
    worker_class = AppWorker if app.config["WORKER_FORK"] else SimpleAppWorker
    worker = worker_class(list(Queues.NAMES), connection=connection, app=app)
    heartbeat = Heartbeat(worker)
    heartbeat.start()
    try:
        worker.work(burst=burst, with_scheduler=False)
    finally:
        heartbeat.stopped.set()
        maintenance.stopped.set()
