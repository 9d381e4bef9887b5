"""Who waits where, in the order they will start, and for about how long (issue 13, queue visibility).

One ``Board`` is one read of the environments and the waiting runs (queued, not yet given an environment),
ordered by ``domain.pools.order_key`` at ``now``; the arithmetic (median, estimate, words) is
``domain.queueing``'s. Read-only: nothing here changes a row.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterable

from flask import current_app
from sqlalchemy import func, select

from ..db import utcnow
from ..domain import pools, queueing
from ..domain.holds import active as hold_active
from ..domain.runs import RunState
from ..extensions import db
from ..models import EnvironmentRow, RunRow

QUEUED, RUNNING = RunState.QUEUED.value, RunState.RUNNING.value


def _seconds(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds()


class Board:
    """The environments and the waiting runs at ``now``, read once; queues, places and estimates from them."""

    def __init__(self, now: datetime | None = None):
        self.now = now or utcnow()
        aging = current_app.config["PRIORITY_AGING_MINUTES"]
        session = db.session
        self.envs = {e.id: e for e in session.execute(select(
            EnvironmentRow.id, EnvironmentRow.enabled, EnvironmentRow.labels, EnvironmentRow.hold_until))}
        waiting = session.execute(select(RunRow.id, RunRow.environment_id, RunRow.pool, RunRow.priority,
                                         RunRow.created_at)
                                  .where(RunRow.state == QUEUED, RunRow.lock_token.is_(None))).all()
        self.waiting = sorted(waiting, key=lambda r: pools.order_key(r.id, r.priority, r.created_at, self.now, aging))
        self._typical: dict[frozenset, float | None] = {}
        self._elapsed: dict[int, float] | None = None

    # --- where a run may start ---------------------------------------------------------------------------

    def serves(self, environment_id: int, run) -> bool:
        """Could ``run`` start on that environment? (A pool run only on an enabled one.)"""
        env = self.envs.get(environment_id)
        if env is None:
            return False
        if run.pool is not None and not env.enabled:
            return False
        return pools.can_use(run.environment_id, run.pool, environment_id, env.labels or [])

    def pool_environments(self, label: str) -> list[int]:
        """The enabled environments carrying ``label``: where a run of that pool may start."""
        return [e.id for e in self.envs.values() if e.enabled and label in (e.labels or [])]

    def environments_of(self, run) -> list[int]:
        return self.pool_environments(run.pool) if run.pool is not None else [run.environment_id]

    # --- queues and places -------------------------------------------------------------------------------

    def queue(self, environment_id: int) -> list[int]:
        """The ids of the runs that could start there, in the order they will start."""
        return [r.id for r in self.waiting if self.serves(environment_id, r)]

    def competing(self, environment_ids: Iterable[int], pool: str | None = None) -> list[int]:
        """The ids of the waiting runs that could start on at least one of these environments, in order
        (with ``pool``: also the runs of that pool, which wait even while no environment carries it)."""
        ids = set(environment_ids)
        exact = {e for e in ids if e in self.envs}
        labels = {label for e in exact if self.envs[e].enabled for label in (self.envs[e].labels or [])}
        return [r.id for r in self.waiting
                if (r.environment_id in exact if r.pool is None else (r.pool in labels or r.pool == pool))]

    def position(self, run_id: int) -> int | None:
        """1 + the waiting runs ordered before it that compete with it (``domain.queueing``); None: not waiting."""
        run = next((r for r in self.waiting if r.id == run_id), None)
        if run is None:
            return None
        ahead = self.competing(self.environments_of(run), run.pool)
        return ahead.index(run_id) + 1

    # --- estimates ---------------------------------------------------------------------------------------

    def typical(self, environment_ids: Iterable[int]) -> float | None:
        """The median duration of the last ``RECENT`` runs finished on these environments."""
        key = frozenset(environment_ids)
        if key not in self._typical:
            rows = db.session.execute(select(RunRow.started_at, RunRow.finished_at).where(
                RunRow.environment_id.in_(key), RunRow.finished_at.is_not(None), RunRow.started_at.is_not(None))
                .order_by(RunRow.finished_at.desc()).limit(queueing.RECENT)).all() if key else []
            self._typical[key] = queueing.median(max(_seconds(r.finished_at, r.started_at), 0.0) for r in rows)
        return self._typical[key]

    def elapsed(self) -> dict[int, float]:
        """Each busy environment: how long its current run has run (0: given the environment, not started)."""
        if self._elapsed is None:
            rows = db.session.execute(select(RunRow.environment_id, RunRow.started_at).where(
                RunRow.environment_id.is_not(None),
                (RunRow.state == RUNNING) | ((RunRow.state == QUEUED) & RunRow.lock_token.is_not(None)))).all()
            self._elapsed = {r.environment_id: _seconds(self.now, r.started_at) if r.started_at else 0.0
                             for r in rows}
        return self._elapsed

    def frees_after(self, environment_ids: list[int], typical: float | None) -> list[float]:
        busy = self.elapsed()
        result = []
        for environment_id in environment_ids:
            until = self.envs[environment_id].hold_until if environment_id in self.envs else None
            hold_left = _seconds(until, self.now) if hold_active(until, self.now) else 0.0
            result.append(queueing.remaining(typical, busy.get(environment_id), hold_left))
        return result

    def estimate(self, run_id: int, position: int | None) -> float | None:
        """Seconds until the run starts (``domain.queueing.estimate``); None when unknown."""
        if position == 0:
            return 0.0
        run = next((r for r in self.waiting if r.id == run_id), None)
        if run is None:
            return None
        envs = [e for e in self.environments_of(run) if e in self.envs]
        typical = self.typical(envs)
        return queueing.estimate(position, typical, self.frees_after(envs, typical))


def places(rows: list[RunRow], board: Board | None = None) -> dict[int, tuple[int, float | None]]:
    """Each queued run of ``rows``: (its position, seconds until it likely starts). 0: it was given its
    environment and waits for a worker."""
    queued = [r for r in rows if r.state == QUEUED]
    if not queued:
        return {}
    if board is None and any(not r.lock_token for r in queued):  # a run given its environment needs no board
        board = Board()
    result = {}
    for row in queued:
        if row.lock_token:
            result[row.id] = (0, 0.0)
            continue
        position = board.position(row.id)
        if position is not None:
            result[row.id] = (position, board.estimate(row.id, position))
    return result


def _dispatched_since(since: datetime):
    """The runs given an environment since ``since``: each is still active or finished since then, so the
    read walks ``ix_runs_state`` and ``ix_runs_finished``, never the whole table."""
    given = func.coalesce(RunRow.dispatched_at, RunRow.started_at)
    return select(RunRow.environment_id, RunRow.created_at, RunRow.dispatched_at, RunRow.started_at).where(
        RunRow.state.in_((QUEUED, RUNNING)) | (RunRow.finished_at >= since), given >= since)


def _wait(r) -> float:
    return max(_seconds(r.dispatched_at or r.started_at, r.created_at), 0.0)


def wait_p50(environment_ids: Iterable[int], now: datetime | None = None) -> dict[int, float | None]:
    """Each environment: the median wait ((dispatched_at or started_at) − created_at, seconds) of the runs
    dispatched there in the last hour; None when none was."""
    ids = list(environment_ids)
    since = (now or utcnow()) - timedelta(seconds=queueing.WAIT_WINDOW_SECONDS)
    waits: dict[int, list[float]] = {i: [] for i in ids}
    for r in db.session.execute(_dispatched_since(since).where(RunRow.environment_id.in_(ids))).all():
        waits[r.environment_id].append(_wait(r))
    return {i: _rounded(queueing.median(values)) for i, values in waits.items()}


def pool_wait_p50(environment_ids: list[int], now: datetime | None = None) -> float | None:
    """The same over the runs dispatched on any of these environments (a pool's)."""
    if not environment_ids:
        return None
    since = (now or utcnow()) - timedelta(seconds=queueing.WAIT_WINDOW_SECONDS)
    rows = db.session.execute(_dispatched_since(since).where(RunRow.environment_id.in_(environment_ids))).all()
    return _rounded(queueing.median(_wait(r) for r in rows))


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def pool_json(label: str) -> dict:
    """``GET /api/v1/pools/<label>``: its enabled environments, who waits for them in order, how long one waited."""
    board = Board()
    environments = board.pool_environments(label)
    queue = board.competing(environments, label)
    return {"label": label, "environments": environments, "queue": queue, "waiting": len(queue),
            "wait_p50_seconds": pool_wait_p50(environments)}


def info(environment_id: int | None = None, pool: str | None = None) -> dict | None:
    """What the new-run form shows for the chosen environment or pool: how many wait, the median wait of
    the last hour (seconds and words). None when neither is chosen."""
    if environment_id is None and pool is None:
        return None
    board = Board()
    if pool is not None:
        environments = board.pool_environments(pool)
        waiting, p50 = len(board.competing(environments, pool)), pool_wait_p50(environments)
    else:
        environments = [environment_id]
        waiting, p50 = len(board.queue(environment_id)), wait_p50([environment_id])[environment_id]
    return {"environment_id": environment_id, "pool": pool, "environments": environments, "waiting": waiting,
            "wait_p50_seconds": p50, "wait_words": queueing.wait_words(p50)}
