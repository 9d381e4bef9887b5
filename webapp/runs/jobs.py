"""The test-run job: what a worker runs for one run. Takes its id; ``executor`` runs pytest for it."""
from __future__ import annotations

import logging
import traceback

from redis.exceptions import RedisError

from ..db import update as sql_update
from ..db import utcnow
from ..domain.masking import Masker
from ..domain.runs import RunState
from ..events import services as events
from ..extensions import db, queues
from ..environments import variables
from ..models import EnvironmentRow, RunRow
from . import dispatch, executor, pipeline, stages

log = logging.getLogger(__name__)


def run_tests(run_id: int) -> str:
    """Claim the run (it must hold its environment's lock), run pytest, record the outcome, hand over."""
    session = db.session
    row = session.get(RunRow, run_id)
    if row is None or row.state != RunState.QUEUED.value or not row.lock_token:
        return "skipped"
    token, environment_id = row.lock_token, row.environment_id
    lock = dispatch.environment_lock(environment_id)
    given, names = _given(row)  # read before the claim, so that one write claims the run and keeps the names
    now = utcnow()
    claimed = session.execute(sql_update(RunRow).where(
        RunRow.id == run_id, RunRow.state == RunState.QUEUED.value, RunRow.lock_token == token)
        .values(state=RunState.RUNNING.value, started_at=now, heartbeat_at=now, **names)).rowcount
    session.commit()
    if not claimed or not lock.extend(token):
        if claimed:
            dispatch.finish(run_id, token, state=RunState.ERROR.value, error="lost the environment lock before start")
        dispatch.release(environment_id, token)
        return "skipped"
    files, log_start = list(row.test_files), executor.log_size(run_id)
    session.rollback()  # hold no transaction (SQLite: no write lock) while pytest runs
    masker = Masker(given.secrets.values() if given else ())  # the worker's own log masks them too
    try:
        if given is None:
            raise RuntimeError("could not read the environment's variables and secrets")
        values = pipeline.run_pytest(run_id, files, log_start, token, lock, given)
    except Exception as exc:  # never leave a run running because of our own failure
        log.error("run %s failed in the worker\n%s", run_id, masker.mask(traceback.format_exc()))
        values = {"state": RunState.ERROR.value, "error": f"the worker failed: {exc}"}
    given = given or pipeline.Given()
    values["error"] = masker.mask(values.get("error"))
    notifications: list[str] = []
    written = dispatch.finish(run_id, token, queued=notifications, **values)
    if given.teardown:  # held before the lock is released: the next run never gets a dirty environment
        notifications += stages.hold_if_dirty(run_id, given.teardown)
    dispatch.release(environment_id, token)  # the next run's job is queued first, then the notification,
    for event_id in notifications:           # so a free worker takes the run
        events.queue(event_id)
    try:
        queues.redis.delete(executor.cancel_key(run_id))
    except RedisError:
        pass
    return values["state"] if written else "fenced"


def _given(row: RunRow) -> tuple[pipeline.Given | None, dict]:
    """What the run gets from its environment, read now (secrets decrypted here, in the worker, never sent
    through Redis), and the names it was given, to keep on the run (never a secret's value). None and no names:
    unreadable (e.g. the credentials key changed)."""
    try:
        environment = db.session.get(EnvironmentRow, row.environment_id)
        given, secrets = variables.for_run(environment, row.id)
    except Exception:
        log.exception("run %s: could not read its environment's variables and secrets", row.id)
        return None, {}
    names = {"variable_names": sorted(environment.variables or {}), "secret_names": sorted(secrets)}
    return pipeline.Given(given, secrets, environment.setup or None, environment.teardown or None), names
