"""Readiness (``GET /readyz``): may this process take traffic? The database answers, Redis answers, the schema is
at Alembic's head and a worker has heartbeated lately. Each check runs in a thread of its own and gets about a
second; a check that fails says why in a few words (details go to the log, not to an anonymous caller)."""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor, TimeoutError as FutureTimeout
from datetime import datetime, timedelta, timezone

from flask import current_app
from redis import Redis
from redis.exceptions import TimeoutError as RedisTimeout
from rq import Worker

log = logging.getLogger(__name__)

CHECK_SECONDS = 1.0  # each check's own budget
HEARTBEAT_SECONDS = 30  # a worker that heartbeated longer ago than this does not count
OK = "ok"


def _probe_redis() -> Redis:
    """A client of its own with short timeouts (the app's waits up to 10 s for a slow answer)."""
    extensions = current_app.extensions
    if "redis_probe" not in extensions:
        extensions["redis_probe"] = Redis.from_url(current_app.config["REDIS_URL"], socket_timeout=CHECK_SECONDS,
                                                   socket_connect_timeout=CHECK_SECONDS)
    return extensions["redis_probe"]


def _problem(what: str, exc: BaseException) -> str:
    log.warning("readiness: %s: %s: %s", what, type(exc).__name__, exc)
    if isinstance(exc, (FutureTimeout, RedisTimeout, TimeoutError)):
        return f"timeout: no answer within {CHECK_SECONDS:g} s"
    return f"{what}: {type(exc).__name__}"


def database_revision(engine) -> str | None:
    """The database's Alembic revision (None: no ``alembic_version``), read on a plain DBAPI connection so that
    the probe opens no transaction (on SQLite the app's would take the write lock)."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SELECT 1")
        cursor.fetchall()
        try:
            cursor.execute("SELECT version_num FROM alembic_version")
        except engine.dialect.loaded_dbapi.Error:
            return None
        row = cursor.fetchone()
        return row[0] if row else None
    finally:
        raw.close()


def schema_state(revision: str | None, head: str) -> str:
    if revision == head:
        return OK
    if revision is None:
        return f"not initialised: no Alembic revision (head is {head})"
    return f"not at head: at {revision}, head is {head}"


def workers_state(connection: Redis, now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    workers = Worker.all(connection=connection)
    fresh = [w for w in workers if w.last_heartbeat
             and now - w.last_heartbeat.replace(tzinfo=w.last_heartbeat.tzinfo or timezone.utc)
             <= timedelta(seconds=HEARTBEAT_SECONDS)]
    if fresh:
        return OK
    if not workers:
        return "none: no worker registered"
    return f"stale: none of {len(workers)} worker(s) heartbeated in the last {HEARTBEAT_SECONDS} s"


def readiness() -> tuple[bool, dict[str, str]]:
    """(ready, {check: "ok" or why not}) for database, redis, schema and workers."""
    from .db import head_revision
    from .extensions import db

    engine, connection, head = db.engine, _probe_redis(), head_revision()
    pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="readyz")
    deadline = time.monotonic() + CHECK_SECONDS  # the checks run side by side: about a second in all

    def left() -> float:
        return max(0.0, deadline - time.monotonic())

    try:
        revision = pool.submit(database_revision, engine)
        redis = pool.submit(connection.ping)
        workers = pool.submit(workers_state, connection)
        checks: dict[str, str] = {}
        try:
            checks["schema"] = schema_state(revision.result(timeout=left()), head)
            checks["database"] = OK
        except Exception as exc:  # noqa: BLE001 (any failure is an answer, never a 500)
            checks["database"] = _problem("unreachable", exc)
            checks["schema"] = "unknown: the database did not answer"
        try:
            redis.result(timeout=left())
            checks["redis"] = OK
            checks["workers"] = workers.result(timeout=left() + 0.2)
        except Exception as exc:  # noqa: BLE001
            if "redis" not in checks:
                checks["redis"] = _problem("unreachable", exc)
                checks["workers"] = "unknown: Redis did not answer"
            else:
                checks["workers"] = _problem("unreadable", exc)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # a stuck check ends by its own timeout, not ours
    checks = {name: checks[name] for name in ("database", "redis", "schema", "workers")}
    return all(v == OK for v in checks.values()), checks
