"""Events: throughput and latency of POST /api/v1/events -> delivered (``processed``) by real workers.

    .venv/bin/python bench/events.py                                  # 2 000 events, then 50/s for 20 s
    .venv/bin/python bench/events.py --count 200 --duration 4         # quick smoke check

A private redis-server, a temporary DATA_DIR (SQLite), ``gunicorn --workers 1 --threads 4 wsgi:app`` and
``--workers`` x ``python worker.py`` (in-process jobs, the app's default) are started. EVENT_SWEEP_SECONDS=300
(``--sweep-seconds``): with the app's default of 30 the sweeper queues a second job for every event that has merely
waited longer than that in a backlog (the table's "RQ jobs run per event" shows it).

(a) Throughput: ``--count`` events POSTed through the API (HTTP, ``--clients`` threads, one keep-alive connection
    each); the database is polled until every one is final. Rate = events / (last ``processed_at`` - the moment
    before the first POST). Baselines, same stack, same run:
      * bare no-op RQ jobs (``bench._common.noop``) through the same workers: jobs / (last RQ ``ended_at`` - first
        enqueue), enqueued one by one from one thread (as many jobs as events);
      * the bare HTTP rate, same clients: ``GET /ping`` and ``POST /api/v1/events`` with ``{}`` (refused with 422:
        routing, JSON body, error handler; no database, no Redis).
    The count is split into ``--rounds`` blocks alternating with the baselines (base, events, events, base, ...),
    so that load elsewhere on the machine weighs on all of them alike.
(b) Latency at a steady ``--rate`` events/s for ``--duration`` s (``--clients`` threads sending on a fixed
    schedule): per event, ``processed_at`` (read from the database) - the client's clock just before its POST (same
    machine, same clock). Baseline, same run, in alternating segments (bare, events, events, bare): bare no-op RQ
    jobs at the same rate (RQ ``ended_at`` - the moment before the enqueue) and ``GET /ping`` at the same rate
    (round trip), both at once.

(c) Token check (``--token-rounds``, 0 skips it): ``--token-rounds`` interleaved rounds, one keep-alive connection,
    of ``GET /ping`` and ``POST /api/v1/events {}`` without a token (401, refused before any lookup), with an
    unknown token (401 after the lookup) and with the real token (422: the token check, then the body refused).
    "unknown token - no token" is the token check alone (keyed hash + the SELECT), per request; the bearer 422 -
    no token 401 adds the body check and the view's validation. ``authenticate_token`` is also timed in this process.

Every API call sends ``Authorization: Bearer <token>``: one admin token, obtained with HTTP Basic on
``POST /api/v1/tokens`` (the stack's ADMIN_PASSWORD is set by this script), so the figures of (a) and (b) include
the token check of every POST.

Targets: (a) >= 200 events/s, (b) p95 <= 200 ms. Where the time goes is reported with --profile and whenever a
target is missed: per-phase latencies (from RQ's own timestamps), the API and the workers each alone (the workers
paused with SIGSTOP while events are POSTed, then resumed to drain the backlog), and SQLite write-lock waits
measured inside gunicorn and the workers (instrumented copies of the same processes). Reports only: exits 0.
"""
from __future__ import annotations

import argparse
import atexit
import cProfile
import http.client
import io
import itertools
import json
import os
import pstats
import py_compile
import signal
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import _common as c  # noqa: E402

NOOP = "bench._common.noop"
EVENTS = "/api/v1/events"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=2000, help="events for the throughput run (default 2000)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--clients", type=int, default=4, help="HTTP client threads, keep-alive (default 4)")
    p.add_argument("--threads", type=int, default=4, help="gunicorn threads, one gunicorn worker (default 4)")
    p.add_argument("--rounds", type=int, default=4, help="alternating blocks for the throughput run (default 4)")
    p.add_argument("--warmup", type=int, default=40, help="untimed events and jobs of each kind first (default 40)")
    p.add_argument("--rate", type=float, default=50.0, help="steady rate for the latency run, per second (default 50)")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of steady events (default 20)")
    p.add_argument("--target-rate", type=float, default=200.0, help="events/s target (default 200)")
    p.add_argument("--target-p95-ms", type=float, default=200.0, help="p95 latency target in ms (default 200)")
    p.add_argument("--sweep-seconds", type=float, default=300.0,
                   help="EVENT_SWEEP_SECONDS of the stack (default 300; the app's default, 30, lets the sweeper queue "
                        "a second job for events that merely wait in a backlog longer than that)")
    p.add_argument("--timeout", type=float, default=600.0, help="give up waiting after this many seconds")
    p.add_argument("--profile", action="store_true", help="print where the time goes even when both targets are met")
    p.add_argument("--no-explain", action="store_true", help="never print where the time goes")
    p.add_argument("--skip-throughput", action="store_true", help="only the latency run (b)")
    p.add_argument("--skip-latency", action="store_true", help="only the throughput run (a)")
    p.add_argument("--token-rounds", type=int, default=200,
                   help="measured rounds of the token-check section (c) (default 200; 0: skip it)")
    return p.parse_args()


# --- time -----------------------------------------------------------------------------------------------------

def _ms_stats(values: list[float]) -> dict:
    if not values:
        return {"n": 0, "p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "max": float("nan")}
    return {"n": len(values), "p50": c.percentile(values, 50), "p95": c.percentile(values, 95),
            "p99": c.percentile(values, 99), "max": max(values)}


def _fmt(value: float) -> str:
    return "-" if value != value else f"{value:.1f}"


# --- HTTP -------------------------------------------------------------------------------------------------------

class Client:
    """One keep-alive connection (the server closes idle ones after 2 s: a fresh Client per block). ``/api/``
    calls send ``Authorization: Bearer <Client.token>`` (the run's one admin token, set once the stack is up)."""

    token: str | None = None

    def __init__(self, port: int):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def request(self, method: str, path: str, payload=None) -> tuple[int, bytes]:
        body = json.dumps(payload).encode() if payload is not None else None
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self.token and path.startswith("/api/"):
            headers["Authorization"] = f"Bearer {self.token}"
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A keep-alive connection the server had closed while idle: the request never reached the app.
                if attempt:
                    raise
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()


def fan_out(port: int, count: int, clients: int, call) -> tuple[list[tuple], float]:
    """``count`` calls ``call(client, i)`` from ``clients`` threads, each with its own keep-alive connection, as
    fast as they answer. Returns ([(i, wall start, ms, result)], seconds for all)."""
    counter, lock, results, errors = itertools.count(), threading.Lock(), [], []

    def run():
        client = Client(port)
        try:
            while True:
                with lock:
                    i = next(counter)
                if i >= count:
                    return
                start, t0 = time.time(), time.perf_counter()
                result = call(client, i)
                results.append((i, start, (time.perf_counter() - t0) * 1000, result))
        except Exception as exc:  # reported by the caller
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=run) for _ in range(max(1, min(clients, count)))]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results, time.perf_counter() - t0


def on_schedule(count: int, rate: float, threads: int, call, start_at: float) -> list[tuple]:
    """``count`` calls ``call(state, i)`` at ``start_at + i / rate`` (perf_counter clock) from ``threads`` threads
    (``state``: per-thread, from ``call.setup()``). Returns [(i, wall start, ms, late ms, result)]."""
    counter, lock, results, errors = itertools.count(), threading.Lock(), [], []

    def run():
        state = call.setup()
        try:
            while True:
                with lock:
                    i = next(counter)
                if i >= count:
                    return
                due = start_at + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                t0 = time.perf_counter()
                start = time.time()
                result = call(state, i)
                results.append((i, start, (time.perf_counter() - t0) * 1000, (t0 - due) * 1000, result))
        except Exception as exc:
            errors.append(exc)
        finally:
            call.teardown(state)

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]
    return sorted(results)


class Scheduled:
    """A call for ``on_schedule``: ``kind`` is "event" (POST), "ping" (GET /ping) or "noop" (an RQ enqueue)."""

    def __init__(self, kind: str, port: int, tag: str = "", queue=None):
        self.kind, self.port, self.tag, self.queue = kind, port, tag, queue

    def setup(self):
        return Client(self.port) if self.kind != "noop" else None

    def teardown(self, state) -> None:
        if state is not None:
            state.close()

    def __call__(self, client, i: int):
        if self.kind == "event":
            status, body = client.request("POST", EVENTS, {"user_id": self.tag, "description": f"{self.tag} #{i}"})
            if status != 201:
                raise RuntimeError(f"POST {EVENTS}: {status} {body[:300]!r}")
            return json.loads(body)["id"]
        if self.kind == "ping":
            status, _ = client.request("GET", "/ping")
            if status != 200:
                raise RuntimeError(f"GET /ping: {status}")
            return None
        return self.queue.enqueue(NOOP, result_ttl=600, failure_ttl=600).id


# --- the database -------------------------------------------------------------------------------------------------

class Db:
    """The events table read straight from SQLite: a connection per read, as a separate client would."""

    def __init__(self, path: str):
        self.path = path

    def _query(self, sql: str, params=()) -> list:
        con = sqlite3.connect(self.path, timeout=30)
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def final_count(self, tag: str) -> int:
        return self._query("SELECT count(*) FROM events WHERE user_id = ? AND status != 'pending'", (tag,))[0][0]

    def rows(self, tag: str) -> dict[str, dict]:
        return {r[0]: {"status": r[1], "created": c.iso_timestamp(r[2]), "queued": c.iso_timestamp(r[3]),
                       "processed": c.iso_timestamp(r[4]), "attempts": r[5], "error": r[6]}
                for r in self._query("SELECT id, status, created_at, queued_at, processed_at, attempts, last_error "
                                     "FROM events WHERE user_id = ?", (tag,))}

    def wait_final(self, tag: str, count: int, timeout: float, alive=()) -> None:
        c.wait_until(lambda: self.final_count(tag) >= count, timeout=timeout, interval=0.05,
                     message=f"{count} events of {tag} to be delivered", alive=alive)

    def write_lock_free(self) -> bool:
        """True when nobody holds SQLite's write lock right now."""
        con = sqlite3.connect(self.path, timeout=0.2, isolation_level=None)
        try:
            con.execute("BEGIN IMMEDIATE")
            con.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            con.close()


def jobs_run(connection) -> int:
    """Jobs the registered workers have ended so far (RQ's own per-worker counters)."""
    from rq import Worker

    return sum(w.successful_job_count + w.failed_job_count for w in Worker.all(connection=connection))


def event_jobs(connection) -> dict[str, object]:
    """The finished RQ jobs of events (result_ttl 60 s: read soon after), by event id."""
    from rq import Queue
    from rq.job import Job

    ids = [j for j in Queue("default", connection=connection).finished_job_registry.get_job_ids()
           if j.startswith("event-")]
    found = {}
    for lo in range(0, len(ids), 500):
        for job in Job.fetch_many(ids[lo:lo + 500], connection=connection):
            if job is not None and job.args and job.started_at:
                found.setdefault(job.args[0], job)
    return found


# --- (a) throughput -----------------------------------------------------------------------------------------------

def bare_jobs(queue, count: int, timeout: float) -> dict:
    """``count`` no-op jobs enqueued one by one; rate from the first enqueue to the last RQ ``ended_at``."""
    from rq.job import Job

    start = time.time()
    t0 = time.perf_counter()
    ids = [queue.enqueue(NOOP, result_ttl=600, failure_ttl=600).id for _ in range(count)]
    enqueue_s = time.perf_counter() - t0
    ended = c.Ended(queue, ids)
    c.wait_until(ended.all, timeout=timeout, interval=0.01, message=f"{count} bare jobs")
    polled = time.perf_counter() - t0
    jobs = [j for j in Job.fetch_many(ids, connection=queue.connection) if j]
    ends = [c.timestamp(j.ended_at) for j in jobs if j.ended_at]
    elapsed = (max(ends) - start) if len(ends) == count else polled
    return {"elapsed": elapsed, "count": count, "phase1": enqueue_s, "not_ok": ended.failed, "jobs": jobs}


def bare_http(port: int, count: int, clients: int, kind: str) -> dict:
    """``count`` requests as fast as ``clients`` keep-alive threads get answers."""
    if kind == "ping":
        def call(client, i):
            return client.request("GET", "/ping")[0]
        expect = 200
    else:
        def call(client, i):
            return client.request("POST", EVENTS, {})[0]
        expect = 422
    results, elapsed = fan_out(port, count, clients, call)
    return {"elapsed": elapsed, "count": count, "phase1": elapsed,
            "not_ok": sum(1 for r in results if r[3] != expect), "ms": [r[2] for r in results]}


def post_events(port: int, db: Db, count: int, clients: int, tag: str, timeout: float, alive=(),
                connection=None) -> dict:
    """``count`` events through the API; rate from just before the first POST to the last ``processed_at``."""
    def call(client, i):
        status, body = client.request("POST", EVENTS, {"user_id": tag, "description": f"{tag} #{i}"})
        if status != 201:
            raise RuntimeError(f"POST {EVENTS}: {status} {body[:300]!r}")
        return json.loads(body)["id"]

    jobs_before = jobs_run(connection) if connection is not None else 0
    start = time.time()
    results, post_s = fan_out(port, count, clients, call)
    db.wait_final(tag, count, timeout, alive)
    rows = db.rows(tag)
    if connection is not None:  # the workers bump their counters just after a job's end: let every job end
        from rq import Queue

        q = Queue("default", connection=connection)
        c.wait_until(lambda: q.count == 0 and q.started_job_registry.count == 0, timeout=timeout, interval=0.02,
                     message="the queue to empty")
        time.sleep(0.1)
    ends = [r["processed"] for r in rows.values() if r["processed"]]
    not_ok = [(k, r) for k, r in rows.items() if r["status"] != "processed"]
    elapsed = (max(ends) - start) if ends else float("nan")
    return {"elapsed": elapsed, "count": count, "phase1": post_s, "not_ok": len(not_ok), "bad": not_ok[:3],
            "ms": [r[2] for r in results], "rows": rows, "start": start,
            "jobs_run": jobs_run(connection) - jobs_before if connection is not None else 0}


def combine(parts: list[dict]) -> dict:
    count, elapsed = sum(p["count"] for p in parts), sum(p["elapsed"] for p in parts)
    return {"count": count, "elapsed": elapsed, "rate": count / elapsed, "phase1": sum(p["phase1"] for p in parts),
            "not_ok": sum(p["not_ok"] for p in parts), "ms": [m for p in parts for m in p.get("ms", [])],
            "jobs": [j for p in parts for j in p.get("jobs", [])], "bad": [b for p in parts for b in p.get("bad", [])],
            "jobs_run": sum(p.get("jobs_run", 0) for p in parts)}


def throughput(args, port: int, db: Db, queue, procs) -> dict:
    rounds = max(1, min(args.rounds, args.count))
    sizes = [(r + 1) * args.count // rounds - r * args.count // rounds for r in range(rounds)]
    parts = {"jobs": [], "ping": [], "post422": [], "events": []}
    for r, size in enumerate(sizes):
        base = [lambda: parts["jobs"].append(bare_jobs(queue, size, args.timeout)),
                lambda: parts["ping"].append(bare_http(port, size, args.clients, "ping")),
                lambda: parts["post422"].append(bare_http(port, size, args.clients, "post422"))]
        ours = [lambda: parts["events"].append(post_events(port, db, size, args.clients, f"bench-a{r}", args.timeout,
                                                           procs, queue.connection))]
        for step in (base + ours if r % 2 == 0 else ours + base):
            step()
    out = {k: combine(v) for k, v in parts.items()}
    out["per_block"] = [p["count"] / p["elapsed"] for p in parts["events"]]
    out["per_block_jobs"] = [p["count"] / p["elapsed"] for p in parts["jobs"]]
    return out


# --- (b) latency ----------------------------------------------------------------------------------------------------

def steady_events(port: int, db: Db, connection, rate: float, seconds: float, clients: int, tag: str,
                  timeout: float, alive=()) -> dict:
    n = max(1, int(rate * seconds))
    sent = on_schedule(n, rate, clients, Scheduled("event", port, tag), time.perf_counter() + 0.05)
    db.wait_final(tag, n, timeout, alive)
    rows, jobs = db.rows(tag), event_jobs(connection)
    samples = []
    for i, start, post_ms, late_ms, event_id in sent:
        row = rows[event_id]
        samples.append({"start": start, "post_ms": post_ms, "late_ms": late_ms, "row": row, "job": jobs.get(event_id),
                        "latency": (row["processed"] - start) * 1000 if row["processed"] else float("nan")})
    return {"samples": samples, "not_ok": sum(1 for s in samples if s["row"]["status"] != "processed")}


def steady_bare(port: int, queue, rate: float, seconds: float, clients: int, timeout: float) -> dict:
    """No-op jobs and GET /ping, each at ``rate``, at once."""
    from rq.job import Job

    n = max(1, int(rate * seconds))
    start_at = time.perf_counter() + 0.05
    out = {}

    def pings():
        out["ping"] = on_schedule(n, rate, clients, Scheduled("ping", port), start_at)

    thread = threading.Thread(target=pings)
    thread.start()
    jobs = on_schedule(n, rate, 2, Scheduled("noop", port, queue=queue), start_at)
    thread.join()
    ids = [r[4] for r in jobs]

    def fetched():
        found = [j for j in Job.fetch_many(ids, connection=queue.connection) if j]
        return found if all(j.ended_at for j in found) and len(found) == n else None

    done = c.wait_until(fetched, timeout=timeout, interval=0.05, message=f"{n} steady no-op jobs")
    by_id = {j.id: j for j in done}
    return {"job_ms": [(c.timestamp(by_id[r[4]].ended_at) - r[1]) * 1000 for r in jobs],
            "ping_ms": [r[2] for r in out["ping"]], "late_ms": [r[3] for r in jobs + out["ping"]]}


def latency(args, port: int, db: Db, connection, queue, procs) -> dict:
    half = args.duration / 2
    events, bare = [], []
    steps = [lambda: bare.append(steady_bare(port, queue, args.rate, half, args.clients, args.timeout)),
             lambda: events.append(steady_events(port, db, connection, args.rate, half, args.clients,
                                                 f"bench-b{len(events)}", args.timeout, procs))]
    for step in steps + steps[::-1]:
        step()
    samples = [s for e in events for s in e["samples"]]
    return {"samples": samples, "not_ok": sum(e["not_ok"] for e in events),
            "latency": _ms_stats([s["latency"] for s in samples]),
            "post": _ms_stats([s["post_ms"] for s in samples]),
            "late": _ms_stats([s["late_ms"] for s in samples]),
            "job": _ms_stats([m for b in bare for m in b["job_ms"]]),
            "ping": _ms_stats([m for b in bare for m in b["ping_ms"]]),
            "bare_late": _ms_stats([m for b in bare for m in b["late_ms"]])}


# --- where the time goes --------------------------------------------------------------------------------------------

def phases(samples: list[dict]) -> None:
    """Per event, from the client's clock, the database's timestamps and RQ's."""
    cols = {"POST round trip (client)": [], "POST start -> created_at (request, INSERT)": [],
            "created_at -> RQ enqueued_at (commit, enqueue)": [], "RQ enqueued_at -> started_at (queue wait)": [],
            "RQ started_at -> processed_at (lease, read, log, inbox, UPDATE)": [],
            "processed_at -> RQ ended_at (commit, lease release, RQ bookkeeping)": [],
            "POST start -> processed_at (the latency)": []}
    names = list(cols)
    for s in samples:
        row, job = s["row"], s["job"]
        cols[names[0]].append(s["post_ms"])
        cols[names[6]].append(s["latency"])
        if row["created"]:
            cols[names[1]].append((row["created"] - s["start"]) * 1000)
        if job is not None and row["created"] and row["processed"]:
            enq, st, end = c.timestamp(job.enqueued_at), c.timestamp(job.started_at), c.timestamp(job.ended_at)
            cols[names[2]].append((enq - row["created"]) * 1000)
            cols[names[3]].append((st - enq) * 1000)
            cols[names[4]].append((row["processed"] - st) * 1000)
            if end:
                cols[names[5]].append((end - row["processed"]) * 1000)
    rows = []
    for name, values in cols.items():
        st = _ms_stats(values)
        rows.append([name, st["n"], _fmt(st["p50"]), _fmt(st["p95"]), _fmt(st["max"])])
    c.print_table(["phase of one event at the steady rate", "n", "p50 ms", "p95 ms", "max ms"], rows,
                  title="Where the time goes: phases of the steady-rate events "
                        "(client clock, SQLite and RQ timestamps)")


def rq_body(jobs: list, label: str) -> list:
    run = [(c.timestamp(j.ended_at) - c.timestamp(j.started_at)) * 1000 for j in jobs if j.started_at and j.ended_at]
    wait = [(c.timestamp(j.started_at) - c.timestamp(j.enqueued_at)) * 1000 for j in jobs if j.started_at and j.enqueued_at]
    return [label, _fmt(statistics.median(run) if run else float("nan")),
            _fmt(statistics.median(wait) if wait else float("nan"))]


class Paused:
    """The workers stopped (SIGSTOP) while no one holds SQLite's write lock, resumed (SIGCONT) on exit."""

    def __init__(self, procs, db: Db):
        self.procs, self.db = procs, db

    def __enter__(self):
        for _ in range(100):
            for p in self.procs:
                os.kill(p.pid, signal.SIGSTOP)
            if self.db.write_lock_free():
                return self
            self.resume()
            time.sleep(0.05)
        raise RuntimeError("could not pause the workers outside a write transaction")

    def resume(self) -> None:
        for p in self.procs:
            os.kill(p.pid, signal.SIGCONT)

    def __exit__(self, *exc):
        self.resume()


def alone(port: int, db: Db, procs, count: int, clients: int, timeout: float) -> dict:
    """The API with the workers paused (events only queued), then the workers draining that backlog alone."""
    tag = "bench-alone"

    def call(client, i):
        status, body = client.request("POST", EVENTS, {"user_id": tag, "description": f"{tag} #{i}"})
        if status != 201:
            raise RuntimeError(f"POST {EVENTS}: {status} {body[:300]!r}")
        return json.loads(body)["id"]

    with Paused(procs, db) as paused:
        results, post_s = fan_out(port, count, clients, call)
        time.sleep(0.2)
        resumed = time.time()
        paused.resume()
    db.wait_final(tag, count, timeout, procs)
    ends = [r["processed"] for r in db.rows(tag).values() if r["processed"]]
    return {"api_rate": count / post_s, "post": _ms_stats([r[2] for r in results]),
            "drain_rate": count / (max(ends) - resumed)}


# Instrumented copies of gunicorn's app and of worker.py: SQLite write transactions timed inside the process.
def _instrument(app, label: str) -> None:
    from sqlalchemy import event

    engine = app.extensions["db"].kw["bind"]
    local = threading.local()
    stats = {"label": label, "pid": os.getpid(), "begin_ms": [], "hold_ms": [], "commit_ms": [], "sql_ms": 0.0,
             "statements": 0, "busy_ms": 0.0}
    guard = threading.Lock()

    def before(conn, cursor, statement, parameters, context, executemany):
        local.t0 = time.perf_counter()

    def after(conn, cursor, statement, parameters, context, executemany):
        now = time.perf_counter()
        ms = (now - local.t0) * 1000
        with guard:
            if statement.startswith("BEGIN"):
                stats["begin_ms"].append(ms)
                local.held = now
            else:
                stats["sql_ms"] += ms
                stats["statements"] += 1

    def timed(original, kind):
        def run(dbapi_connection):
            t0 = time.perf_counter()
            try:
                return original(dbapi_connection)
            finally:
                now = time.perf_counter()
                with guard:
                    if kind == "commit":
                        stats["commit_ms"].append((now - t0) * 1000)
                    held = getattr(local, "held", None)
                    if held is not None:
                        stats["hold_ms"].append((now - held) * 1000)
                        local.held = None
        return run

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    engine.dialect.do_commit = timed(engine.dialect.do_commit, "commit")
    engine.dialect.do_rollback = timed(engine.dialect.do_rollback, "rollback")
    out = Path(os.environ["BENCH_STATS_DIR"]) / f"{label}-{os.getpid()}.json"

    def dump():
        with guard:
            text = json.dumps(stats)
        out.write_text(text)

    def every_second():
        while True:
            time.sleep(1)
            dump()

    threading.Thread(target=every_second, daemon=True).start()
    atexit.register(dump)


def instrumented_app():
    """``gunicorn 'bench.events:instrumented_app()'``: the app of wsgi.py, instrumented."""
    from webapp import create_app

    app = create_app()
    _instrument(app, "gunicorn")
    return app


def instrumented_worker() -> None:
    """``python -c 'from bench.events import instrumented_worker; instrumented_worker()'``: worker.py, instrumented."""
    from webapp import create_app
    from webapp.workers import start_worker

    app = create_app()
    _instrument(app, "worker")
    start_worker(app)


def lock_waits(settings, tmp: Path, args, count: int) -> None:
    """One throughput block through instrumented gunicorn and workers: SQLite write-lock waits by side."""
    stats_dir = tmp / "stats"
    stats_dir.mkdir(exist_ok=True)
    settings.extra["BENCH_STATS_DIR"] = str(stats_dir)
    gunicorn, port = c.start_gunicorn(settings, tmp / "gunicorn-instrumented.log", threads=args.threads,
                                     app_spec="bench.events:instrumented_app()")
    procs = [gunicorn]
    try:
        workers = c.start_workers(settings, args.workers, tmp, argv=[
            sys.executable, "-c", "from bench.events import instrumented_worker; instrumented_worker()"])
        procs += workers
        db = Db(settings.database_url[len("sqlite:///"):])
        post_events(port, db, 20, args.clients, "bench-i-warm", args.timeout, procs)
        time.sleep(1.2)  # every process has dumped its figures since the warm-up: subtracted below
        before = {f.name: json.loads(f.read_text()) for f in stats_dir.glob("*.json")}
        result = post_events(port, db, count, args.clients, "bench-i", args.timeout, procs)
        time.sleep(1.2)  # and dumped them again after the last event
    finally:
        for p in reversed(procs):
            c.stop_process(p)
    rows = []
    for f in sorted(stats_dir.glob("*.json")):
        s = json.loads(f.read_text())
        b = before.get(f.name, {"begin_ms": [], "hold_ms": [], "commit_ms": [], "sql_ms": 0.0, "statements": 0})
        begin, hold, commit = (s[k][len(b[k]):] for k in ("begin_ms", "hold_ms", "commit_ms"))
        if not begin:
            continue
        rows.append([f"{s['label']} pid {s['pid']}", len(begin), _fmt(c.percentile(begin, 50)),
                     _fmt(c.percentile(begin, 95)), _fmt(max(begin)), f"{sum(begin) / 1000:.2f}",
                     _fmt(c.percentile(hold, 50)), _fmt(c.percentile(hold, 95)), _fmt(c.percentile(commit, 50)),
                     f"{(s['sql_ms'] - b['sql_ms']) / 1000:.2f}"])
    c.print_table(["process (instrumented)", "write txns", "BEGIN wait p50", "p95", "max", "total s",
                   "lock held p50", "p95", "COMMIT p50", "other SQL s"], rows,
                  title=f"SQLite write lock: {count} events in {result['elapsed']:.2f} s "
                        f"({count / result['elapsed']:.1f}/s, instrumented), ms unless said")
    print("  BEGIN wait = time in BEGIN IMMEDIATE, i.e. waiting for another process's write transaction (SQLite's\n"
          "  busy handler sleeps 1, 2, 5, 10, 15, 20, 25 ... ms between tries); lock held = BEGIN end -> COMMIT end.")


def in_process(app, n: int = 200) -> None:
    """The API handler (test client) and the job body, each in this process, profiled: SQL vs Redis vs the rest."""
    from sqlalchemy import event

    from webapp.events import jobs as event_jobs
    from webapp.extensions import queues

    engine = app.extensions["db"].kw["bind"]
    stats = {"sql": 0.0, "begin": 0.0, "commit": 0.0, "statements": 0, "redis": 0.0, "redis_calls": 0}

    def before(conn, cursor, statement, parameters, context, executemany):
        conn.info["bench_t0"] = time.perf_counter()

    def after(conn, cursor, statement, parameters, context, executemany):
        ms = (time.perf_counter() - conn.info.pop("bench_t0")) * 1000
        stats["begin" if statement.startswith("BEGIN") else "sql"] += ms
        stats["statements"] += 1

    original_commit = engine.dialect.do_commit

    def commit(dbapi_connection):
        t0 = time.perf_counter()
        try:
            return original_commit(dbapi_connection)
        finally:
            stats["commit"] += (time.perf_counter() - t0) * 1000

    with app.app_context():
        redis = queues.redis
    pool = redis.connection_pool
    original_get = pool.get_connection

    def counted_connection(*a, **kw):  # every Redis command or pipeline checks a connection out of the pool
        conn = original_get(*a, **kw)
        if not getattr(conn, "_bench_wrapped", False):
            send, read = conn.send_packed_command, conn.read_response

            def timed_send(*sa, **skw):
                stats["redis_calls"] += 1
                conn._bench_t0 = time.perf_counter()
                return send(*sa, **skw)

            def timed_read(*ra, **rkw):
                try:
                    return read(*ra, **rkw)
                finally:  # a pipeline sends once and reads many times: count each interval once
                    now = time.perf_counter()
                    stats["redis"] += (now - conn._bench_t0) * 1000
                    conn._bench_t0 = now
            conn.send_packed_command, conn.read_response, conn._bench_wrapped = timed_send, timed_read, True
        return conn

    from flask.testing import FlaskClient

    class TokenClient(FlaskClient):  # the in-process requests authenticate as the HTTP ones do
        def open(self, *a, **kw):
            kw["headers"] = {**dict(kw.get("headers") or {}), "Authorization": f"Bearer {Client.token}"}
            return super().open(*a, **kw)

    app.test_client_class = TokenClient
    client = app.test_client()
    ids = [client.post(EVENTS, json={"user_id": "bench-p", "description": f"warm #{i}"}).get_json()["id"]
           for i in range(5)]
    for event_id in ids:
        with app.app_context():
            event_jobs.send_notification(event_id)
    results = {}
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    engine.dialect.do_commit = commit
    pool.get_connection = counted_connection
    profiler = cProfile.Profile()
    kinds = ("POST /api/v1/events (test client)", "job body: jobs.send_notification")

    def one(kind: str, i: int) -> None:
        if kind == kinds[0]:
            response = client.post(EVENTS, json={"user_id": "bench-p", "description": f"profiled #{i}"})
            ids.append(response.get_json()["id"])
        else:
            with app.app_context():
                assert event_jobs.send_notification(ids.pop(5)) == "processed"

    try:
        for kind in kinds:  # timed, without the profiler
            for k in stats:
                stats[k] = 0 if isinstance(stats[k], int) else 0.0
            totals = []
            for i in range(n):
                t0 = time.perf_counter()
                one(kind, i)
                totals.append((time.perf_counter() - t0) * 1000)
            results[kind] = (statistics.median(totals), {k: v / n for k, v in stats.items()})
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
        engine.dialect.do_commit = original_commit
        pool.get_connection = original_get
        for kind in kinds:  # then profiled (cProfile slows Python down: only for the shares)
            profiler.enable()
            for i in range(n // 2):
                one(kind, i)
            profiler.disable()
    finally:
        if event.contains(engine, "before_cursor_execute", before):
            event.remove(engine, "before_cursor_execute", before)
            event.remove(engine, "after_cursor_execute", after)
        engine.dialect.do_commit = original_commit
        pool.get_connection = original_get
    rows = []
    for name, (total, s) in results.items():
        rows.append([name, _fmt(total), f"{s['statements']:.1f}", _fmt(s["begin"]), _fmt(s["sql"]), _fmt(s["commit"]),
                     f"{s['redis_calls']:.1f}", _fmt(s["redis"]),
                     _fmt(total - s["begin"] - s["sql"] - s["commit"] - s["redis"])])
    c.print_table(["in-process, no contention (median of %d)" % n, "total ms", "SQL stmts", "BEGIN ms",
                   "SQL ms", "COMMIT ms", "Redis calls", "Redis ms", "Python ms"], rows,
                  title="One request and one job body in this process (the queue's jobs are emptied, not run)")
    for order, what in (("cumulative", "heaviest calls of ours (cumulative)"),
                        ("tottime", "hottest functions (own time)")):
        out = io.StringIO()
        stats_view = pstats.Stats(profiler, stream=out).sort_stats(order)
        if order == "cumulative":
            stats_view.print_stats(r"webapp/(events|api|db|extensions)", 12)
        else:
            stats_view.print_stats(12)
        lines = [ln for ln in out.getvalue().splitlines() if ln.strip()]
        start = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls")), 0)
        print(f"  {what}, profiled pass of {n // 2} of each (cProfile inflates Python time):")
        for ln in lines[start:start + 13]:
            print("   " + ln)


def explain(args, app, settings, tmp, port, db, connection, queue, procs, a, b) -> None:
    if b is not None:
        phases(b["samples"])
    if a is not None:
        ev_jobs = list(event_jobs(connection).values())
        c.print_table(["RQ job, median ms", "started->ended (in the worker)", "enqueued->started (wait)"],
                      [rq_body(a["jobs"]["jobs"], "bare no-op job (throughput run)"),
                       rq_body(ev_jobs, "event job (last throughput block / latency run)")],
                      title="Job time in the workers (RQ timestamps)")
        print(f"  worker time per job = workers / rate: bare {args.workers / a['jobs']['rate'] * 1000:.1f} ms, "
              f"events {args.workers / a['events']['rate'] * 1000:.1f} ms")
    n = min(args.count, 1000)
    split = alone(port, db, procs, n, args.clients, args.timeout)
    rows = [["API alone (workers paused): POSTs/s", f"{split['api_rate']:.1f}",
             f"POST p50 {_fmt(split['post']['p50'])} ms, p95 {_fmt(split['post']['p95'])} ms"],
            ["workers alone (draining that backlog): events/s", f"{split['drain_rate']:.1f}", ""]]
    if a is not None:
        rows.append(["both at once (throughput run): POSTs/s while delivering",
                     f"{a['events']['count'] / a['events']['phase1']:.1f}",
                     f"POST p50 {_fmt(c.percentile(a['events']['ms'], 50))} ms, "
                     f"p95 {_fmt(c.percentile(a['events']['ms'], 95))} ms"])
        rows.append(["both at once (throughput run): events delivered/s", f"{a['events']['rate']:.1f}", ""])
    c.print_table(["side", "per second", "note"], rows,
                  title=f"API side vs worker side ({n} events each, same stack; {os.cpu_count()} CPUs, "
                        f"load {os.getloadavg()[0]:.2f})")
    side = "worker" if split["drain_rate"] < split["api_rate"] else "API"
    print(f"  Verdict: the {side} side bounds the rate ({min(split['drain_rate'], split['api_rate']):.1f}/s alone; "
          f"both at once share {os.cpu_count()} CPUs and SQLite's one write lock).")
    if a is not None and a["jobs"]["rate"] < args.target_rate:
        print(f"  Bare no-op RQ jobs reach only {a['jobs']['rate']:.1f}/s on these {args.workers} workers: with one RQ "
              f"job per event no job body, however cheap, meets {args.target_rate:g}/s here; deliver many events "
              f"per job.")
    for p in procs[1:]:
        c.stop_process(p)
    c.stop_process(procs[0])
    try:
        lock_waits(settings, tmp, args, n)
    except Exception as exc:
        print(f"(lock-wait measurement failed: {exc!r})")
    from rq import Queue

    Queue("default", connection=connection).empty()
    try:
        in_process(app)
    except Exception as exc:
        print(f"(in-process profile failed: {exc!r})")
    Queue("default", connection=connection).empty()


def post_mortem(tmp: Path, db: Db, connection) -> None:
    """After a failed wait: what is still pending, what RQ holds, and the processes' last words."""
    from rq import Queue
    from rq.job import Job

    try:
        for tag, status, n in db._query("SELECT user_id, status, count(*) FROM events GROUP BY user_id, status"):
            if status != "processed":
                print(f"  events of {tag}: {n} {status}")
        for row in db._query("SELECT id, user_id, attempts, created_at, queued_at FROM events "
                             "WHERE status = 'pending' ORDER BY created_at LIMIT 5"):
            print(f"  pending: {row}")
        q = Queue("default", connection=connection)
        print(f"  RQ: {q.count} queued, {q.started_job_registry.count} started, "
              f"{q.failed_job_registry.count} failed, {q.finished_job_registry.count} finished")
        for job_id in q.failed_job_registry.get_job_ids()[:3]:
            job = Job.fetch(job_id, connection=connection)
            result = job.latest_result()
            info = (result.exc_string if result else job.exc_info) or ""
            print(f"  failed job {job_id} {job.func_name}{job.args}: " + " | ".join(info.strip().splitlines()[-3:]))
    except Exception as exc:
        print(f"  (post-mortem query failed: {exc!r})")
    marks = ("ERROR", "WARNING", "CRITICAL", "Traceback", "Error:", "Exception")
    for log in sorted(tmp.glob("*.log")):
        try:
            lines = log.read_text(errors="replace").splitlines()
        except OSError:
            continue
        notable = [ln for ln in lines if any(m in ln for m in marks)][-10:]
        print(f"--- {log.name}: {len(notable)} notable line(s) of the last, then its last 3 lines ---")
        print("\n".join(notable + ["..."] + lines[-3:]))


# --- (c) the token check ---------------------------------------------------------------------------------------------

def token_check(port: int, app, token: str, rounds: int) -> dict:
    body = b"{}"
    probes = [("GET /ping (no auth)", "GET", "/ping", None, {"Accept": "*/*"}, 200)]
    probes += [(label, "POST", EVENTS, body, headers, expect if expect else 422)
               for label, headers, expect in c.token_probes("POST", EVENTS, body, token)]
    load0 = os.getloadavg()[0]
    samples = c.measure_interleaved(port, probes, rounds)
    ping, none, unknown, bearer = (samples[p[0]] for p in probes)
    return {"rounds": rounds, "rows": [(p[0], samples[p[0]]) for p in probes], "load": (load0, os.getloadavg()[0]),
            "lookup": (unknown["p50"] - none["p50"], unknown["p95"] - none["p95"]),
            "bearer": (bearer["p50"] - none["p50"], bearer["p95"] - none["p95"]),
            "bearer_ping": (bearer["p50"] - ping["p50"], bearer["p95"] - ping["p95"]),
            "inproc": c.token_lookup_us(app, token)}


def print_token_check(t: dict) -> None:
    rows = [[label, f"{r['p50']:.2f}", f"{r['p95']:.2f}", ",".join(map(str, sorted(r["statuses"])))]
            for label, r in t["rows"]]
    rows += [["= unknown token - no token (the token check alone)", f"{t['lookup'][0]:+.2f}", f"{t['lookup'][1]:+.2f}", ""],
             ["= bearer 422 - no token 401 (token check + body check + validation)", f"{t['bearer'][0]:+.2f}",
              f"{t['bearer'][1]:+.2f}", ""],
             ["= bearer 422 - ping", f"{t['bearer_ping'][0]:+.2f}", f"{t['bearer_ping'][1]:+.2f}", ""],
             ["authenticate_token in this process (no HTTP)", f"{t['inproc']['p50'] / 1000:.2f}",
              f"{t['inproc']['p95'] / 1000:.2f}", f"n={t['inproc']['n']}"]]
    c.print_table(["(c) token check, per request", "p50 ms", "p95 ms", "status"], rows,
                  title=f"(c) Token check: {t['rounds']} interleaved rounds, one keep-alive connection, workers idle; "
                        f"load average {t['load'][0]:.2f} -> {t['load'][1]:.2f} on {os.cpu_count()} CPUs")
    print(f"  Token check per request: {t['lookup'][0]:+.2f} ms p50 / {t['lookup'][1]:+.2f} ms p95 over HTTP, "
          f"{t['inproc']['p50'] / 1000:.2f} ms p50 in process.")


# --- main -------------------------------------------------------------------------------------------------------------

def main() -> int:
    args = parse_args()
    from redis import Redis
    from rq import Queue

    from webapp import create_app

    with tempfile.TemporaryDirectory(prefix="cutover-bench-events-") as tmpdir:
        tmp = Path(tmpdir)
        redis_server = c.RedisServer(tmp / "redis").start()
        procs: list = []
        try:
            settings = c.Settings(tmp / "data", redis_server.url, EVENT_SWEEP_SECONDS=args.sweep_seconds)
            app = create_app(settings.config())  # creates the tables
            db = Db(app.extensions["db"].kw["bind"].url.database)
            for module in (c.ROOT / "bench" / "__init__.py", Path(c.__file__)):
                py_compile.compile(str(module), doraise=True)  # the workers import bench._common for the no-op jobs
            connection = Redis.from_url(redis_server.url)
            queue = Queue("default", connection=connection)
            gunicorn, port = c.start_gunicorn(settings, tmp / "gunicorn.log", threads=args.threads)
            procs = [gunicorn]
            procs += c.start_workers(settings, args.workers, tmp)
            Client.token = c.api_token(port, settings, name="bench-events")
            load0 = os.getloadavg()[0]
            if args.warmup:
                bare_jobs(queue, args.warmup, args.timeout)
                bare_http(port, args.warmup, args.clients, "ping")
                bare_http(port, args.warmup, args.clients, "post422")
                post_events(port, db, args.warmup, args.clients, "bench-warm", args.timeout, procs)
            t0 = time.perf_counter()
            try:
                a = None if args.skip_throughput else throughput(args, port, db, queue, procs)
                load_a = os.getloadavg()[0]
                b = None if args.skip_latency else latency(args, port, db, connection, queue, procs)
                load_b = os.getloadavg()[0]
                tc = token_check(port, app, Client.token, args.token_rounds) if args.token_rounds > 0 else None
            except Exception:
                import traceback

                traceback.print_exc(file=sys.stdout)
                print("The measurement failed; the state of the stack:")
                post_mortem(tmp, db, connection)
                return 0
            spent = time.perf_counter() - t0

            met = []
            if a is not None:
                ev, jobs = a["events"], a["jobs"]
                c.print_table(
                    ["run", "count", "seconds", "per second", "ratio to bare jobs", "phase 1 s", "not ok"],
                    [["bare no-op RQ jobs (baseline)", jobs["count"], f"{jobs['elapsed']:.2f}", f"{jobs['rate']:.1f}",
                      "1.00", f"{jobs['phase1']:.2f}", jobs["not_ok"]],
                     ["GET /ping (baseline, HTTP only)", a["ping"]["count"], f"{a['ping']['elapsed']:.2f}",
                      f"{a['ping']['rate']:.1f}", f"{a['ping']['rate'] / jobs['rate']:.2f}",
                      f"{a['ping']['phase1']:.2f}", a["ping"]["not_ok"]],
                     ["POST /api/v1/events {} -> 422 (baseline)", a["post422"]["count"],
                      f"{a['post422']['elapsed']:.2f}", f"{a['post422']['rate']:.1f}",
                      f"{a['post422']['rate'] / jobs['rate']:.2f}", f"{a['post422']['phase1']:.2f}",
                      a["post422"]["not_ok"]],
                     ["events: POST -> processed", ev["count"], f"{ev['elapsed']:.2f}", f"{ev['rate']:.1f}",
                      f"{ev['rate'] / jobs['rate']:.2f}", f"{ev['phase1']:.2f}", ev["not_ok"]]],
                    title=f"(a) Throughput: {args.clients} keep-alive clients, gunicorn 1x{args.threads} threads, "
                          f"{args.workers} workers (python worker.py, in-process jobs); load average {load0:.2f} -> "
                          f"{load_a:.2f} on {os.cpu_count()} CPUs")
                print("  phase 1 = enqueueing (bare jobs), all requests answered (HTTP), all POSTs answered (events).")
                print(f"  RQ jobs run per event: {ev['jobs_run'] / ev['count']:.2f} (EVENT_SWEEP_SECONDS="
                      f"{args.sweep_seconds:g}); POSTs answered/s while delivering: "
                      f"{ev['count'] / ev['phase1']:.1f}; per block events/s: "
                      + ", ".join(f"{x:.1f}" for x in a["per_block"])
                      + "; bare jobs/s: " + ", ".join(f"{x:.1f}" for x in a["per_block_jobs"]))
                for event_id, row in ev["bad"]:
                    print(f"  event {event_id} ended {row['status']}: {row['error']}")
                ok_a = ev["rate"] >= args.target_rate and not ev["not_ok"]
                met.append(ok_a)
                print(f"Target (a): >= {args.target_rate:g} events/s: {ev['rate']:.1f}/s: {'MET' if ok_a else 'MISSED'}"
                      f" (bare no-op jobs on the same workers: {jobs['rate']:.1f}/s)")
            if b is not None:
                lat, job, ping = b["latency"], b["job"], b["ping"]
                c.print_table(
                    ["steady run", "n", "p50 ms", "p95 ms", "p99 ms", "max ms", "p95 ratio to bare job"],
                    [["bare no-op RQ job: enqueue -> ended (baseline)", job["n"], _fmt(job["p50"]), _fmt(job["p95"]),
                      _fmt(job["p99"]), _fmt(job["max"]), "1.00"],
                     ["GET /ping round trip (baseline)", ping["n"], _fmt(ping["p50"]), _fmt(ping["p95"]),
                      _fmt(ping["p99"]), _fmt(ping["max"]), f"{ping['p95'] / job['p95']:.2f}"],
                     ["event: POST round trip", b["post"]["n"], _fmt(b["post"]["p50"]), _fmt(b["post"]["p95"]),
                      _fmt(b["post"]["p99"]), _fmt(b["post"]["max"]), f"{b['post']['p95'] / job['p95']:.2f}"],
                     ["event: POST start -> processed_at", lat["n"], _fmt(lat["p50"]), _fmt(lat["p95"]),
                      _fmt(lat["p99"]), _fmt(lat["max"]), f"{lat['p95'] / job['p95']:.2f}"]],
                    title=f"(b) Latency at a steady {args.rate:g}/s for {args.duration:g} s of events "
                          f"(+ {args.duration:g} s of baselines, alternating); "
                          f"load average {load_a:.2f} -> {load_b:.2f}")
                print(f"  sends behind schedule: events p95 {_fmt(b['late']['p95'])} ms, "
                      f"max {_fmt(b['late']['max'])} ms;"
                      f" baselines p95 {_fmt(b['bare_late']['p95'])} ms (latency counts from the actual send)")
                ok_b = lat["p95"] <= args.target_p95_ms and not b["not_ok"]
                met.append(ok_b)
                print(f"Target (b): p95 <= {args.target_p95_ms:g} ms: {_fmt(lat['p95'])} ms: "
                      f"{'MET' if ok_b else 'MISSED'}" + (f" ({b['not_ok']} not processed)" if b["not_ok"] else ""))
            if tc is not None:
                print_token_check(tc)
            print(f"\nMeasured in {spent:.0f} s; load average now {os.getloadavg()[0]:.2f} (1 min) on "
                  f"{os.cpu_count()} CPUs.")
            if (args.profile or not all(met)) and not args.no_explain:
                try:
                    explain(args, app, settings, tmp, port, db, connection, queue, procs, a, b)
                except Exception as exc:  # the diagnosis must never hide the figures
                    import traceback

                    traceback.print_exc()
                    print(f"(diagnosis failed: {exc!r})")
        finally:
            for proc in reversed(procs):
                c.stop_process(proc)
            redis_server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
