"""What ``GET /metrics`` reports, read when Prometheus scrapes: a handful of aggregate queries (GROUP BY over
indexed columns) and two Redis reads. Every process answers alike from the shared database and Redis.

Cardinality stays low: states and statuses are fixed sets; per-environment series exist only for environments
with runs waiting. The recent-run figures cover the runs that finished in the last ``RECENT_SECONDS``: they are
gauges over that window (use them as they are, not with ``rate()``)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import current_app
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from rq import Worker
from sqlalchemy import func, select

from .. import retention
from ..domain.events import EventStatus
from ..domain.migration import MigrationState
from ..domain.runs import RunState
from ..extensions import db, queues
from ..health import HEARTBEAT_SECONDS
from ..models import EventRow, MigrationRow, RunRow

RECENT_SECONDS = 3600  # the window of the recent-run figures
QUANTILES = (0.5, 0.95, 1.0)
QUEUED, RUNNING = RunState.QUEUED.value, RunState.RUNNING.value


def exposition() -> tuple[bytes, str]:
    """The text format of this app's registry (one scrape) and its content type."""
    return generate_latest(current_app.extensions["metrics_registry"]), CONTENT_TYPE_PLAIN_0_0_4


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


def _by(name: str, doc: str, label: str, names, counts: dict) -> GaugeMetricFamily:
    """A gauge with one series per value of a fixed set (0 where no row has it)."""
    family = GaugeMetricFamily(name, doc, labels=[label])
    for value in names:
        family.add_metric([value], counts.get(value, 0))
    return family


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counts(column) -> dict[str, int]:
    return dict(db.session.execute(select(column, func.count()).group_by(column)).all())


def _retention(stored: dict) -> list:
    """The retention passes the workers made and the rows they deleted, per kind (counters kept in Redis)."""
    counts = {key.decode(): int(value) for key, value in stored.items()}
    passes = CounterMetricFamily("cutover_retention_passes", "Retention passes made (RETENTION_DAYS).",
                                 value=counts.get("passes", 0))
    deleted = CounterMetricFamily("cutover_retention_deleted", "Rows deleted (run results: cleared) by retention.",
                                  labels=["kind"])
    for kind in retention.KINDS:
        deleted.add_metric([kind], counts.get(kind, 0))
    return [passes, deleted]


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def _window(name: str, what: str, values: list[float]) -> list[GaugeMetricFamily]:
    """count, sum and quantiles of ``values`` (seconds) over the recent window."""
    ordered = sorted(values)
    doc = f"{what} of the test runs finished in the last {RECENT_SECONDS} s"
    quantiles = GaugeMetricFamily(name, f"{doc}: quantiles (1 = the longest)", labels=["quantile"])
    for q in QUANTILES:
        quantiles.add_metric([f"{q:g}"], _quantile(ordered, q))
    return [quantiles, _gauge(f"{name}_count", f"{doc}: how many", len(ordered)),
            _gauge(f"{name}_sum", f"{doc}: their sum", round(sum(ordered), 6))]


def _seconds_between(dialect: str):
    """``later - earlier`` in seconds, as a SQL expression (NULL when either is)."""
    if dialect == "sqlite":
        return lambda later, earlier: (func.julianday(later) - func.julianday(earlier)) * 86400.0
    return lambda later, earlier: func.extract("epoch", later - earlier)


class CutoverCollector:
    """The custom collector: ``collect()`` runs in the request's app context, at each scrape."""

    def collect(self):
        now = datetime.now(timezone.utc)
        try:
            yield from self._redis(now)
            yield from self._runs(now)
            yield _by("cutover_migrations", "Migrations by state.", "state", [s.value for s in MigrationState],
                      _counts(MigrationRow.state))
            yield from self._events()
        finally:
            db.session.rollback()  # end the read transaction (on SQLite: hold no lock between scrapes)

    def _redis(self, now: datetime):
        depth = GaugeMetricFamily("cutover_queue_jobs", "Jobs waiting in each RQ queue.", labels=["queue"])
        for name, queue in current_app.extensions["queues"].items():
            depth.add_metric([name], queue.count)
        yield depth
        workers = Worker.all(connection=queues.redis)
        fresh = [w for w in workers if w.last_heartbeat
                 and now - _aware(w.last_heartbeat) <= timedelta(seconds=HEARTBEAT_SECONDS)]
        yield _gauge("cutover_workers_alive", f"RQ workers that heartbeated in the last {HEARTBEAT_SECONDS} s.",
                     len(fresh))
        yield _gauge("cutover_workers_registered", "RQ workers registered in Redis (alive or not).", len(workers))
        yield from _retention(queues.redis.hgetall(retention.COUNTS_KEY))

    def _runs(self, now: datetime):
        yield _by("cutover_runs", "Test runs by state.", "state", [s.value for s in RunState], _counts(RunRow.state))
        # the active runs themselves (a few hundred at most, by ix_runs_state), grouped here: a GROUP BY in SQL
        # lets SQLite walk all of ix_runs_env_state instead
        active = db.session.execute(select(RunRow.environment_id, RunRow.state, RunRow.lock_token, RunRow.created_at)
                                    .where(RunRow.state.in_((QUEUED, RUNNING)))).all()
        busy = {r.environment_id for r in active if r.state == RUNNING or r.lock_token is not None}
        queued: dict[int, list] = {}
        for r in active:
            if r.state != RUNNING and r.lock_token is None and r.environment_id is not None:  # a pool run: none yet
                queued.setdefault(r.environment_id, []).append(r.created_at)
        waiting = sorted((env, len(times), min(times)) for env, times in queued.items())
        yield _gauge("cutover_environments_busy", "Environments running a run or handing it one.", len(busy))
        runs = GaugeMetricFamily("cutover_environment_waiting_runs", "Runs waiting for the environment (only "
                                 "environments with runs waiting).", labels=["environment"])
        oldest = GaugeMetricFamily("cutover_environment_oldest_wait_seconds", "How long the environment's oldest "
                                   "waiting run has waited.", labels=["environment"])
        for env, count, first in waiting:
            runs.add_metric([str(env)], count)
            oldest.add_metric([str(env)], max(0.0, round((now - _aware(first)).total_seconds(), 3)))
        yield from (runs, oldest)
        yield from self._recent(now)

    def _recent(self, now: datetime):
        seconds = _seconds_between(db.session.get_bind().dialect.name)  # in SQL: no datetime parsed per row
        rows = db.session.execute(select(RunRow.state, seconds(RunRow.finished_at, RunRow.started_at),
                                         seconds(RunRow.started_at, RunRow.created_at))
                                  .where(RunRow.finished_at >= now - timedelta(seconds=RECENT_SECONDS))).all()
        finals = [s.value for s in RunState if s.is_final]
        counts = dict.fromkeys(finals, 0)
        for state, _, _ in rows:
            if state in counts:
                counts[state] += 1
        yield _by("cutover_recent_runs_finished", f"Test runs finished in the last {RECENT_SECONDS} s, by state.",
                  "state", finals, counts)
        started = [(ran, waited) for _, ran, waited in rows if ran is not None]  # never started: no times
        yield from _window("cutover_recent_run_duration_seconds", "Time from start to end",
                           [float(ran) for ran, _ in started])
        yield from _window("cutover_recent_run_wait_seconds", "Time from queued to started",
                           [max(0.0, float(waited or 0.0)) for _, waited in started])

    def _events(self):
        yield _by("cutover_events", "Events by status.", "status", [s.value for s in EventStatus],
                  _counts(EventRow.status))
        failed, attempts = db.session.execute(
            select(func.count(), func.coalesce(func.sum(EventRow.attempts), 0))
            .where(EventRow.status == EventStatus.FAILED.value, EventRow.last_error.is_not(None))).one()
        yield _gauge("cutover_webhook_failed_events", "Events whose webhook delivery failed (every attempt), "
                     "not retried since.", failed)
        yield _gauge("cutover_webhook_failed_attempts", "Webhook delivery attempts made for those events.", attempts)
