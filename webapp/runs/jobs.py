"""The test-run job: what a worker runs for one run. Takes its id; ``executor`` runs pytest for it."""
from __future__ import annotations

import logging

from redis.exceptions import RedisError

from ..db import update as sql_update
from ..db import utcnow
from ..domain.runs import RunState
from ..events import services as events
from ..extensions import db, queues
from ..models import RunRow
from . import dispatch, executor

log = logging.getLogger(__name__)


def run_tests(run_id: int) -> str:
    """Claim the run (it must hold its environment's lock), run pytest, record the outcome, hand over."""
    session = db.session
    row = session.get(RunRow, run_id)
    if row is None or row.state != RunState.QUEUED.value or not row.lock_token:
        return "skipped"
    token, environment_id = row.lock_token, row.environment_id
    lock = dispatch.environment_lock(environment_id)
    now = utcnow()
    claimed = session.execute(sql_update(RunRow).where(
        RunRow.id == run_id, RunRow.state == RunState.QUEUED.value, RunRow.lock_token == token)
        .values(state=RunState.RUNNING.value, started_at=now, heartbeat_at=now)).rowcount
    session.commit()
    if not claimed or not lock.extend(token):
        if claimed:
            dispatch.finish(run_id, token, state=RunState.ERROR.value, error="lost the environment lock before start")
        dispatch.release(environment_id, token)
        return "skipped"
    files, log_start = list(row.test_files), executor.log_size(run_id)
    session.rollback()  # hold no transaction (SQLite: no write lock) while pytest runs
    try:
        values = executor.run_pytest(run_id, files, log_start, token, lock)
    except Exception as exc:  # never leave a run running because of our own failure
        log.exception("run %s failed in the worker", run_id)
        values = {"state": RunState.ERROR.value, "error": f"the worker failed: {exc}"}
    notifications: list[str] = []
    written = dispatch.finish(run_id, token, queued=notifications, **values)
    dispatch.release(environment_id, token)  # the next run's job is queued first, then the notification,
    for event_id in notifications:           # so a free worker takes the run
        events.queue(event_id)
    try:
        queues.redis.delete(executor.cancel_key(run_id))
    except RedisError:
        pass
    return values["state"] if written else "fenced"
