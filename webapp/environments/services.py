"""Environments: live status from the Redis locks and the run queue; edit; force-unlock."""
from __future__ import annotations

from typing import Any

from redis.exceptions import RedisError
from sqlalchemy import select

from .. import inputs
from ..audit import services as audit
from ..db import update as sql_update
from ..db import utcnow
from ..domain.errors import NotFound
from ..domain.runs import RunState
from ..extensions import db, queues
from ..models import EnvironmentRow, RunRow
from ..runs import dispatch, queueing, testfiles
from ..runs.executor import cancel_key

ACTIVE = (RunState.QUEUED.value, RunState.RUNNING.value)


def get(environment_id: int) -> EnvironmentRow:
    row = db.session.get(EnvironmentRow, environment_id)
    if row is None:
        raise NotFound("environment")
    return row


def _holders(ids: list[int]) -> dict[int, str | None]:
    try:
        values = queues.redis.mget([f"env-lock:{i}" for i in ids]) if ids else []
    except RedisError:
        values = [None] * len(ids)
    return {i: (v.decode() if isinstance(v, bytes) else v) for i, v in zip(ids, values)}


def status(rows: list[EnvironmentRow]) -> dict[int, dict]:
    """For each environment: busy or idle, the run holding it (and since when), and the waiting runs that
    could start there (its own and the pool runs whose label it carries) in the order they will start."""
    ids = [r.id for r in rows]
    active = db.session.execute(
        select(RunRow.id, RunRow.environment_id, RunRow.state, RunRow.lock_token, RunRow.started_at,
               RunRow.dispatched_at, RunRow.username)
        .where(RunRow.state.in_(ACTIVE), RunRow.environment_id.in_(ids)).order_by(RunRow.id)).all()
    holders = _holders(ids)
    board = queueing.Board()
    result = {i: {"current": None, "queue": board.queue(i), "holder": holders.get(i)} for i in ids}
    pooled = {r.id for r in board.waiting if r.pool is not None}
    for run in active:
        if run.state == RunState.RUNNING.value or run.lock_token:
            result[run.environment_id]["current"] = run
    for entry in result.values():
        entry["busy"] = bool(entry["current"] or entry["holder"])
        entry["pooled"] = sum(1 for i in entry["queue"] if i in pooled)  # of them, pool runs
    for row in rows:
        result[row.id]["hold"] = holds.as_json(row)  # who keeps new runs off it, why, until when
    return result


def as_json(row: EnvironmentRow, state: dict | None = None, waits: dict[int, float | None] | None = None) -> dict:
    """An environment; ``waits``: ``queueing.wait_p50`` when already read (the list reads all at once)."""
    state = state or status([row])[row.id]
    waits = waits if waits is not None else queueing.wait_p50([row.id])
    return {"id": row.id, "name": row.name, "description": row.description, "enabled": row.enabled,
            "labels": list(row.labels or []), "status": "busy" if state["busy"] else "idle",
            "current_run_id": state["current"].id if state["current"] else None, "queue": state["queue"],
            "wait_p50_seconds": waits[row.id],
            "hold": state["hold"], "variables": dict(row.variables or {}), "secrets": list(row.secret_names or []),
            "setup": row.setup, "teardown": row.teardown}


from . import holds, variables  # noqa: E402  (holds reads ``get`` from here)


def all_with_status() -> tuple[list[EnvironmentRow], dict[int, dict]]:
    rows = list(db.session.scalars(select(EnvironmentRow).order_by(EnvironmentRow.id)))
    return rows, status(rows)


def list_json(label: str | None = None) -> dict:
    """Every environment, or (``label``) those carrying that label."""
    rows, states = all_with_status()
    rows = [r for r in rows if label is None or label in (r.labels or [])]
    waits = queueing.wait_p50(r.id for r in rows)
    items = [as_json(r, states[r.id], waits) for r in rows]
    return {"items": items, "total": len(items), "page": 1, "per_page": len(items)}


def recent_runs(environment_id: int, limit: int = 20) -> list[RunRow]:
    return list(db.session.scalars(select(RunRow).where(RunRow.environment_id == environment_id)
                                   .order_by(RunRow.id.desc()).limit(limit)))


def queued_runs(queue: list[int]) -> list[RunRow]:
    """The rows of a queue (``status()[id]["queue"]``), in its order."""
    rows = {r.id: r for r in db.session.scalars(select(RunRow).where(RunRow.id.in_(queue)))} if queue else {}
    return [rows[i] for i in queue if i in rows]


def update(environment_id: int, data: Any) -> EnvironmentRow:
    """An admin's changes; the audit log names the variables and secrets set or removed, never a value."""
    row = get(environment_id)
    changes = inputs.environment_changes(data, testfiles.exists, row.variables, lambda: variables.secrets_of(row))
    said = {name: value for name, value in changes.items() if name not in ("variables", "secrets")}
    if "variables" in changes:
        said["variable_names"] = variables.diff(row.variables or {}, changes["variables"])
    if "secrets" in changes:
        said["secret_names"] = variables.diff(variables.secrets_of(row), changes["secrets"])
        variables.store_secrets(row, changes.pop("secrets"))
    for name, value in changes.items():
        setattr(row, name, value)
    row.updated_at = utcnow()
    audit.record("environment.update", f"environment:{environment_id}", **said)
    db.session.commit()
    if "labels" in changes or changes.get("enabled"):  # pool runs may now use it
        dispatch.safe_dispatch(environment_id)
    return row


def unlock(environment_id: int) -> EnvironmentRow:
    """Force-release a stuck lock: its run ends ``error`` and the queue moves on."""
    row = get(environment_id)
    holder = status([row])[row.id]["current"]
    audit.record("environment.unlock", f"environment:{environment_id}", run=holder.id if holder else None)
    if holder is not None:
        dispatch.finish(holder.id, holder.lock_token, state=RunState.ERROR.value,
                        error="lock released by an operator")
        db.session.execute(sql_update(RunRow).where(RunRow.id == holder.id).values(cancel_requested=True))
        db.session.commit()
        try:
            queues.redis.set(cancel_key(holder.id), "1", ex=3600)  # its worker kills pytest, its result is fenced
        except RedisError:
            pass
    db.session.commit()
    try:
        dispatch.environment_lock(environment_id).force_release()
    except RedisError:
        pass
    dispatch.safe_dispatch(environment_id)
    return row

