"""SQL timing for the benchmarks, through SQLAlchemy's own engine, pool and Session events (nothing patched): in this
process (``SqlTimer``, ``time_in_process``) or inside gunicorn and the workers (``timed_stack``: the same processes,
started as ``timed_wsgi_app()`` and ``timed_worker()``, dump their figures every second).

Module-level imports are standard library (and ``bench._common``) only.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from bench import _common as c

# --- SQL timing ------------------------------------------------------------------------------------------------

class SqlTimer:
    """SQLAlchemy's own events on ``engine`` (and the ORM Session's), nothing patched: each statement's time
    (BEGIN apart), commits, new DBAPI connections and, per transaction, the BEGIN IMMEDIATE wait (from the
    engine's begin event: the wait for this process's writer lock, ``db._one_writer_per_process``, included), the
    lock held (BEGIN end -> commit or rollback end, or the pool's reset on check-in) and the COMMIT time (the engine's
    commit event -> the Session's after_commit). ``keep``: also every (statement, parameters, ms), BEGIN included,
    in ``captured``. Use as a context manager (listeners removed on exit)."""

    def __init__(self, engine, keep: bool = False):
        from sqlalchemy.orm import Session

        self.engine, self.keep, self.local, self.guard = engine, keep, threading.local(), threading.Lock()
        self.captured: list[list] = []
        self.reset()
        self.listeners = [(engine, "begin", self._begin), (engine, "before_cursor_execute", self._before),
                          (engine, "after_cursor_execute", self._after),
                          (engine, "commit", self._commit), (engine.pool, "connect", self._connect),
                          (engine.pool, "checkin", self._checkin),
                          (Session, "after_commit", self._ended), (Session, "after_rollback", self._ended)]

    def reset(self) -> None:
        self.stats = {"begin_ms": [], "hold_ms": [], "commit_ms": [], "sql_ms": 0.0, "statements": 0,
                      "commits": 0, "connects": 0}
        self.captured.clear()

    def __enter__(self) -> "SqlTimer":
        from sqlalchemy import event

        for target, name, fn in self.listeners:
            event.listen(target, name, fn, insert=name == "begin")  # before the app's: its wait counts too
        return self

    def __exit__(self, *exc) -> None:
        from sqlalchemy import event

        for target, name, fn in self.listeners:
            if event.contains(target, name, fn):
                event.remove(target, name, fn)

    def _begin(self, conn):  # the transaction's start: a wait for this process's writer lock, then the BEGIN
        self.local.begun = time.perf_counter()

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        self.local.t0 = time.perf_counter()
        if statement.startswith("BEGIN") and getattr(self.local, "begin_t0", None) is None:
            # from the transaction's start (the wait for this process's writer lock), else from the first try
            # (webapp.db.begin_immediate retries BEGIN while another process holds the lock)
            begun, self.local.begun = getattr(self.local, "begun", None), None
            self.local.begin_t0 = begun if begun is not None else self.local.t0

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        now = time.perf_counter()
        if statement.startswith("BEGIN"):
            self.local.t0, self.local.begin_t0 = self.local.begin_t0, None  # the wait from the first try
        ms = (now - self.local.t0) * 1000
        with self.guard:
            if self.keep:
                self.captured.append([statement, parameters, ms])
            if statement.startswith("BEGIN"):
                self.stats["begin_ms"].append(ms)
                self.local.held = now
            else:
                self.stats["sql_ms"] += ms
                self.stats["statements"] += 1

    def _commit(self, conn):
        self.local.commit = time.perf_counter()
        with self.guard:
            self.stats["commits"] += 1

    def _connect(self, *_):
        with self.guard:
            self.stats["connects"] += 1

    def _checkin(self, *_):  # a transaction ended by the pool's reset-on-return rollback (a read, closed)
        now, held = time.perf_counter(), getattr(self.local, "held", None)
        self.local.held = None
        if held is not None:
            with self.guard:
                self.stats["hold_ms"].append((now - held) * 1000)

    def _ended(self, session):
        now = time.perf_counter()
        commit, held = getattr(self.local, "commit", None), getattr(self.local, "held", None)
        self.local.commit = self.local.held = None
        with self.guard:
            if commit is not None:
                self.stats["commit_ms"].append((now - commit) * 1000)
            if held is not None:
                self.stats["hold_ms"].append((now - held) * 1000)


def _timed_app(label: str):
    """The app as wsgi.py/worker.py build it, its SQL timed (SqlTimer) and dumped every second and at exit into
    $BENCH_STATS_DIR/<label>-<pid>.json."""
    import atexit

    from webapp import create_app

    app = create_app()
    timer = SqlTimer(app.extensions["db"].kw["bind"]).__enter__()
    out = Path(os.environ["BENCH_STATS_DIR"]) / f"{label}-{os.getpid()}.json"

    def dump():
        with timer.guard:
            text = json.dumps({"label": label, "pid": os.getpid(), **timer.stats})
        out.write_text(text)

    def every_second():
        while True:
            time.sleep(1)
            dump()

    threading.Thread(target=every_second, daemon=True).start()
    atexit.register(dump)
    return app


def timed_wsgi_app():
    """``gunicorn 'bench._sql:timed_wsgi_app()'``: the app of wsgi.py with its SQL timed."""
    return _timed_app("gunicorn")


def timed_worker() -> None:
    """``python -c 'from bench._sql import timed_worker; timed_worker()'``: worker.py with its SQL timed."""
    from webapp.workers import start_worker

    start_worker(_timed_app("worker"))


@contextmanager
def timed_stack(s: c.Stack, workers: int, threads: int = 4, web_workers: int = 1):
    """Another gunicorn and ``workers`` workers on ``s``'s DATA_DIR and Redis, started as ``timed_wsgi_app()`` and
    ``timed_worker()``: each dumps its ``SqlTimer`` figures into ``<stack>.stats_dir`` every second."""
    stats_dir = s.tmp / "stats"
    stats_dir.mkdir(exist_ok=True)
    s.settings.extra["BENCH_STATS_DIR"] = str(stats_dir)
    gunicorn, port = c.start_gunicorn(s.settings, s.tmp / "gunicorn-timed.log", workers=web_workers, threads=threads,
                                    app_spec="bench._sql:timed_wsgi_app()")
    t = c.Stack(s.tmp, s.settings, s.app, port, gunicorn, token=s.token)
    t.stats_dir = stats_dir
    try:
        t.workers = c.start_workers(s.settings, workers, s.tmp, name="worker-timed", argv=[
            sys.executable, "-c", "from bench._sql import timed_worker; timed_worker()"])
        yield t
    finally:
        for p in reversed(t.procs):
            c.stop_process(p)


def lock_stats(stats_dir: Path) -> dict[str, dict]:
    """What every timed process has dumped so far, by file name."""
    return {f.name: json.loads(f.read_text()) for f in sorted(stats_dir.glob("*.json"))}


LOCK_HEADERS = ["process (instrumented)", "write txns", "BEGIN wait p50", "p95", "max", "total s", "lock held p50",
                "p95", "COMMIT p50", "other SQL s"]


def lock_rows(now: dict[str, dict], before: dict[str, dict]) -> list[list]:
    """Per timed process, the write transactions between two ``lock_stats``: BEGIN IMMEDIATE wait, lock held,
    COMMIT (ms) and the other SQL (s); the columns of ``LOCK_HEADERS``."""
    rows = []
    for name, x in now.items():
        b = before.get(name, {"begin_ms": [], "hold_ms": [], "commit_ms": [], "sql_ms": 0.0})
        begin, hold, commit = (x[k][len(b[k]):] for k in ("begin_ms", "hold_ms", "commit_ms"))
        if begin:
            rows.append([f"{x['label']} pid {x['pid']}", len(begin), c.fmt(c.percentile(begin, 50)),
                         c.fmt(c.percentile(begin, 95)), c.fmt(max(begin)), f"{sum(begin) / 1000:.2f}",
                         c.fmt(c.percentile(hold, 50)), c.fmt(c.percentile(hold, 95)), c.fmt(c.percentile(commit, 50)),
                         f"{(x['sql_ms'] - b['sql_ms']) / 1000:.2f}"])
    return rows


def time_in_process(engine, redis, calls: dict[str, Callable[[int], object]], n: int) -> dict[str, tuple]:
    """Each of ``calls`` ``n`` times in this process (``call(i)``), no profiler: (median ms, per call: statements
    (BEGIN included), BEGIN ms, other SQL ms, COMMIT ms (``SqlTimer``), Redis commands and their server-side ms
    (``redis_commands``: INFO commandstats of ``redis``, nobody else using it))."""
    results = {}
    with SqlTimer(engine) as timer:
        for label, call in calls.items():
            timer.reset()
            calls0, redis0 = c.redis_commands(redis)
            totals = []
            for i in range(n):
                t0 = time.perf_counter()
                call(i)
                totals.append((time.perf_counter() - t0) * 1000)
            calls1, redis1 = c.redis_commands(redis)
            x = timer.stats
            results[label] = (c.median(totals), {
                "statements": (x["statements"] + len(x["begin_ms"])) / n, "begin": sum(x["begin_ms"]) / n,
                "sql": x["sql_ms"] / n, "commit": sum(x["commit_ms"]) / n, "redis_calls": (calls1 - calls0) / n,
                "redis": (redis1 - redis0) / n})
    return results
