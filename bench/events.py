"""Events: throughput and latency of POST /api/v1/events -> delivered (``processed``) by real workers.

    .venv/bin/python bench/events.py                                  # 2 000 events, then 50/s for 10 s
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

Targets: (a) >= 400 events/s and >= 1.0 x the bare no-op job rate of the same run, (b) p95 <= 200 ms. Where the time
goes is reported with --profile and whenever a target is missed: per-phase latencies (from RQ's own timestamps; a
drain job is matched to the events whose processed_at falls within its run), the API and the workers each alone (the
workers paused with SIGSTOP while events are POSTed, then resumed to drain the backlog), SQLite write-lock waits
measured inside gunicorn and the workers (the same processes started with ``bench._sql``'s SQL timing: SQLAlchemy's
own events) and one request and one drain job body in this process (Redis: the server's INFO commandstats). Reports
only: exits 0.
"""
from __future__ import annotations

import argparse
import cProfile
import json
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _common as c  # noqa: E402
from bench import _sql as sql  # noqa: E402

EVENTS = "/api/v1/events"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=2000, help="events for the throughput run (default 2000)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--clients", type=int, default=4, help="HTTP client threads, keep-alive (default 4)")
    p.add_argument("--threads", type=int, default=4, help="gunicorn threads per gunicorn worker (default 4)")
    p.add_argument("--web-workers", type=int, default=1, help="gunicorn worker processes (default 1)")
    p.add_argument("--rounds", type=int, default=4, help="alternating blocks for the throughput run (default 4)")
    p.add_argument("--warmup", type=int, default=40, help="untimed events and jobs of each kind first (default 40)")
    p.add_argument("--rate", type=float, default=50.0, help="steady rate for the latency run, per second (default 50)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of steady events (default 10)")
    p.add_argument("--target-rate", type=float, default=400.0, help="events/s target (default 400)")
    p.add_argument("--target-ratio", type=float, default=1.0,
                   help="and at least this ratio to the bare no-op job rate of the same run (default 1.0)")
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


# --- the calls and the events table --------------------------------------------------------------------------------

def post_event(tag: str):
    """A ``c.drive`` call: POST one event of ``tag``; its id."""
    def call(client: c.Client, i: int) -> str:
        status, body = client.send("POST", EVENTS, {"user_id": tag, "description": f"{tag} #{i}"})
        if status != 201:
            raise RuntimeError(f"POST {EVENTS}: {status} {body[:300]!r}")
        return json.loads(body)["id"]
    return call


def ping(client: c.Client, i: int) -> None:
    status, _ = client.request("GET", "/ping")
    if status != 200:
        raise RuntimeError(f"GET /ping: {status}")


def final_count(s: c.Stack, tag: str) -> int:
    return s.query("SELECT count(*) FROM events WHERE user_id = ? AND status != 'pending'", (tag,))[0][0]


def event_rows(s: c.Stack, tag: str) -> dict[str, dict]:
    return {r[0]: {"status": r[1], "created": c.epoch(r[2]), "queued": c.epoch(r[3]), "processed": c.epoch(r[4]),
                   "attempts": r[5], "error": r[6]}
            for r in s.query("SELECT id, status, created_at, queued_at, processed_at, attempts, last_error "
                             "FROM events WHERE user_id = ?", (tag,))}


def wait_final(s: c.Stack, tag: str, count: int, timeout: float) -> None:
    c.wait_until(lambda: final_count(s, tag) >= count, timeout=timeout, interval=0.05,
                 message=f"{count} events of {tag} to be delivered", alive=s.procs)


def jobs_run(connection) -> int:
    """Jobs the registered workers have ended so far (RQ's own per-worker counters)."""
    from rq import Worker

    return sum(w.successful_job_count + w.failed_job_count for w in Worker.all(connection=connection))


def event_jobs(s: c.Stack, rows: dict[str, dict] | None = None) -> dict[str, object]:
    """The finished RQ jobs that delivered events (result_ttl 60 s: read soon after), by event id: a drain job
    (``deliver_pending``, no arguments) delivered the events whose ``processed_at`` falls within its run; an old
    per-event job (``send_notification``) names its event."""
    from rq.job import Job

    ids = [j for j in s.queue().finished_job_registry.get_job_ids() if j.startswith("event-")]
    found, drains = {}, []
    for lo in range(0, len(ids), 500):
        for job in Job.fetch_many(ids[lo:lo + 500], connection=s.redis):
            if job is None or not job.started_at or not job.ended_at:
                continue
            if job.args:
                found.setdefault(job.args[0], job)
            else:
                drains.append((c.epoch(job.started_at), c.epoch(job.ended_at), job))
    drains.sort(key=lambda d: d[0])
    for event_id, row in (rows or {}).items():
        if event_id not in found and row["processed"]:
            found[event_id] = next((job for st, end, job in drains if st <= row["processed"] <= end + 0.001), None)
    return found


# --- (a) throughput -----------------------------------------------------------------------------------------------

def bare_jobs(s: c.Stack, count: int, timeout: float) -> dict:
    b = c.bare_jobs(s.queue(), count, timeout)
    return {**b, "phase1": b["enqueue"], "not_ok": b["failed"]}


def bare_http(s: c.Stack, count: int, clients: int, kind: str) -> dict:
    """``count`` requests as fast as ``clients`` keep-alive threads get answers."""
    method, path, payload, expect = ("GET", "/ping", None, 200) if kind == "ping" else ("POST", EVENTS, {}, 422)
    results, elapsed = c.drive(count, clients, lambda client, i: client.send(method, path, payload)[0], s.api)
    return {"elapsed": elapsed, "count": count, "phase1": elapsed,
            "not_ok": sum(1 for r in results if r[4] != expect), "ms": [r[2] for r in results]}


def post_events(s: c.Stack, count: int, clients: int, tag: str, timeout: float, count_jobs: bool = False) -> dict:
    """``count`` events through the API; rate from just before the first POST to the last ``processed_at``."""
    jobs_before = jobs_run(s.redis) if count_jobs else 0
    start = time.time()
    results, post_s = c.drive(count, clients, post_event(tag), s.api)
    wait_final(s, tag, count, timeout)
    rows = event_rows(s, tag)
    if count_jobs:  # the workers bump their counters just after a job's end: let every job end
        q = s.queue()
        c.wait_until(lambda: q.count == 0 and q.started_job_registry.count == 0, timeout=timeout, interval=0.02,
                     message="the queue to empty")
        time.sleep(0.1)
    ends = [r["processed"] for r in rows.values() if r["processed"]]
    not_ok = [(k, r) for k, r in rows.items() if r["status"] != "processed"]
    return {"elapsed": (max(ends) - start) if ends else float("nan"), "count": count, "phase1": post_s,
            "not_ok": len(not_ok), "bad": not_ok[:3], "ms": [r[2] for r in results], "rows": rows, "start": start,
            "jobs_run": jobs_run(s.redis) - jobs_before if count_jobs else 0}


def combine(parts: list[dict]) -> dict:
    count, elapsed = sum(p["count"] for p in parts), sum(p["elapsed"] for p in parts)
    return {"count": count, "elapsed": elapsed, "rate": count / elapsed, "phase1": sum(p["phase1"] for p in parts),
            "not_ok": sum(p["not_ok"] for p in parts), "ms": [m for p in parts for m in p.get("ms", [])],
            "jobs": [j for p in parts for j in p.get("jobs", [])], "bad": [b for p in parts for b in p.get("bad", [])],
            "jobs_run": sum(p.get("jobs_run", 0) for p in parts)}


def throughput(args, s: c.Stack) -> dict:
    sizes = [hi - lo for lo, hi in c.split(args.count, max(1, min(args.rounds, args.count)))]
    parts = {"jobs": [], "ping": [], "post422": [], "events": []}

    def baselines(r: int) -> None:
        parts["jobs"].append(bare_jobs(s, sizes[r], args.timeout))
        parts["ping"].append(bare_http(s, sizes[r], args.clients, "ping"))
        parts["post422"].append(bare_http(s, sizes[r], args.clients, "post422"))

    c.alternate(len(sizes), baselines, lambda r: parts["events"].append(
        post_events(s, sizes[r], args.clients, f"bench-a{r}", args.timeout, True)))
    out = {k: combine(v) for k, v in parts.items()}
    out["per_block"] = [p["count"] / p["elapsed"] for p in parts["events"]]
    out["per_block_jobs"] = [p["count"] / p["elapsed"] for p in parts["jobs"]]
    return out


# --- (b) latency ----------------------------------------------------------------------------------------------------

def steady_events(s: c.Stack, rate: float, seconds: float, clients: int, tag: str, timeout: float) -> dict:
    n = max(1, int(rate * seconds))
    sent, _ = c.drive(n, clients, post_event(tag), s.api, rate=rate, start_at=time.perf_counter() + 0.05)
    wait_final(s, tag, n, timeout)
    rows = event_rows(s, tag)
    jobs = event_jobs(s, rows)
    samples = []
    for i, start, post_ms, late_ms, event_id in sent:
        row = rows[event_id]
        samples.append({"start": start, "post_ms": post_ms, "late_ms": late_ms, "row": row, "job": jobs.get(event_id),
                        "latency": (row["processed"] - start) * 1000 if row["processed"] else float("nan")})
    return {"samples": samples, "not_ok": sum(1 for x in samples if x["row"]["status"] != "processed")}


def steady_bare(s: c.Stack, rate: float, seconds: float, clients: int, timeout: float) -> dict:
    """No-op jobs (enqueued from 2 threads) and GET /ping, each at ``rate``, at once."""
    from rq.job import Job

    n, queue, out = max(1, int(rate * seconds)), s.queue(), {}
    start_at = time.perf_counter() + 0.05
    thread = threading.Thread(target=lambda: out.update(
        ping=c.drive(n, clients, ping, s.api, rate=rate, start_at=start_at)[0]))
    thread.start()
    jobs, _ = c.drive(n, 2, lambda _, i: queue.enqueue(c.NOOP, result_ttl=600, failure_ttl=600).id, rate=rate,
                      start_at=start_at)
    thread.join()
    ids = [r[4] for r in jobs]

    def fetched():
        found = [j for j in Job.fetch_many(ids, connection=s.redis) if j]
        return found if all(j.ended_at for j in found) and len(found) == n else None

    by_id = {j.id: j for j in c.wait_until(fetched, timeout=timeout, interval=0.05, message=f"{n} steady no-op jobs")}
    return {"job_ms": [(c.epoch(by_id[r[4]].ended_at) - r[1]) * 1000 for r in jobs],
            "ping_ms": [r[2] for r in out["ping"]], "late_ms": [r[3] for r in jobs + out["ping"]]}


def latency(args, s: c.Stack) -> dict:
    half = args.duration / 2
    events, bare = [], []
    c.alternate(2, lambda r: bare.append(steady_bare(s, args.rate, half, args.clients, args.timeout)),
                lambda r: events.append(steady_events(s, args.rate, half, args.clients, f"bench-b{r}", args.timeout)))
    samples = [x for e in events for x in e["samples"]]
    return {"samples": samples, "not_ok": sum(e["not_ok"] for e in events),
            "latency": c.ms_stats(x["latency"] for x in samples), "post": c.ms_stats(x["post_ms"] for x in samples),
            "late": c.ms_stats(x["late_ms"] for x in samples), "job": c.ms_stats(m for b in bare for m in b["job_ms"]),
            "ping": c.ms_stats(m for b in bare for m in b["ping_ms"]),
            "bare_late": c.ms_stats(m for b in bare for m in b["late_ms"])}


def report(args, a: dict | None, b: dict | None, load0: float, load_a: float, load_b: float) -> list[bool]:
    """The tables of (a) and (b) and their Target lines; whether each target was met."""
    met = []
    if a is not None:
        ev, jobs = a["events"], a["jobs"]
        c.print_table(
            ["run", "count", "seconds", "per second", "ratio to bare jobs", "phase 1 s", "not ok"],
            [[label, x["count"], f"{x['elapsed']:.2f}", f"{x['rate']:.1f}", f"{x['rate'] / jobs['rate']:.2f}",
              f"{x['phase1']:.2f}", x["not_ok"]]
             for label, x in (("bare no-op RQ jobs (baseline)", jobs), ("GET /ping (baseline, HTTP only)", a["ping"]),
                              ("POST /api/v1/events {} -> 422 (baseline)", a["post422"]),
                              ("events: POST -> processed", ev))],
            title=f"(a) Throughput: {args.clients} keep-alive clients, gunicorn {args.web_workers}x{args.threads} "
                  f"threads, {args.workers} workers (python worker.py, in-process jobs); load average {load0:.2f} -> "
                  f"{load_a:.2f} on {os.cpu_count()} CPUs")
        print("  phase 1 = enqueueing (bare jobs), all requests answered (HTTP), all POSTs answered (events).")
        print(f"  RQ jobs run per event: {ev['jobs_run'] / ev['count']:.2f} (EVENT_SWEEP_SECONDS="
              f"{args.sweep_seconds:g}); POSTs answered/s while delivering: "
              f"{ev['count'] / ev['phase1']:.1f}; per block events/s: "
              + ", ".join(f"{x:.1f}" for x in a["per_block"])
              + "; bare jobs/s: " + ", ".join(f"{x:.1f}" for x in a["per_block_jobs"]))
        for event_id, row in ev["bad"]:
            print(f"  event {event_id} ended {row['status']}: {row['error']}")
        ratio = ev["rate"] / jobs["rate"]
        ok_a = ev["rate"] >= args.target_rate and ratio >= args.target_ratio and not ev["not_ok"]
        met.append(ok_a)
        print(f"Target (a): >= {args.target_rate:g} events/s and >= {args.target_ratio:g} x bare no-op jobs: "
              f"{ev['rate']:.1f}/s, {ratio:.2f} x (bare no-op jobs on the same workers: {jobs['rate']:.1f}/s): "
              f"{'MET' if ok_a else 'MISSED'}" + (f" ({ev['not_ok']} not processed)" if ev["not_ok"] else ""))
        c.record("events (a) throughput POST -> processed", f"{ev['rate']:.1f}/s, {ratio:.2f} x bare jobs",
                 f">= {args.target_rate:g}/s and >= {args.target_ratio:g} x bare jobs", ok_a)
    if b is not None:
        lat, job, ping = b["latency"], b["job"], b["ping"]
        c.print_table(
            ["steady run", "n", "p50 ms", "p95 ms", "p99 ms", "max ms", "p95 ratio to bare job"],
            [[label, x["n"], *(c.fmt(x[k]) for k in ("p50", "p95", "p99", "max")), f"{x['p95'] / job['p95']:.2f}"]
             for label, x in (("bare no-op RQ job: enqueue -> ended (baseline)", job),
                              ("GET /ping round trip (baseline)", ping), ("event: POST round trip", b["post"]),
                              ("event: POST start -> processed_at", lat))],
            title=f"(b) Latency at a steady {args.rate:g}/s for {args.duration:g} s of events "
                  f"(+ {args.duration:g} s of baselines, alternating); "
                  f"load average {load_a:.2f} -> {load_b:.2f}")
        print(f"  sends behind schedule: events p95 {c.fmt(b['late']['p95'])} ms, "
              f"max {c.fmt(b['late']['max'])} ms;"
              f" baselines p95 {c.fmt(b['bare_late']['p95'])} ms (latency counts from the actual send)")
        ok_b = lat["p95"] <= args.target_p95_ms and not b["not_ok"]
        met.append(ok_b)
        print(f"Target (b): p95 <= {args.target_p95_ms:g} ms: {c.fmt(lat['p95'])} ms: "
              f"{'MET' if ok_b else 'MISSED'}" + (f" ({b['not_ok']} not processed)" if b["not_ok"] else ""))
        c.record("events (b) latency p95 at a steady rate", f"{c.fmt(lat['p95'])} ms at {args.rate:g}/s",
                 f"<= {args.target_p95_ms:g} ms", ok_b)
    return met


# --- where the time goes --------------------------------------------------------------------------------------------

def phases(samples: list[dict]) -> None:
    """Per event, from the client's clock, the database's timestamps and RQ's."""
    cols = {"POST round trip (client)": [], "POST start -> created_at (request, INSERT)": [],
            "created_at -> drain job enqueued_at (commit, SET NX, enqueue; < 0: it waited already)": [],
            "created_at -> drain job started_at (queue wait)": [],
            "drain started_at -> processed_at (leases, batch SELECT, UPDATE, inbox, log)": [],
            "processed_at -> drain ended_at (commit, release, next pass, RQ bookkeeping)": [],
            "POST start -> processed_at (the latency)": []}
    names = list(cols)
    for x in samples:
        row, job = x["row"], x["job"]
        cols[names[0]].append(x["post_ms"])
        cols[names[6]].append(x["latency"])
        if row["created"]:
            cols[names[1]].append((row["created"] - x["start"]) * 1000)
        if job is not None and row["created"] and row["processed"]:
            enq, st, end = c.epoch(job.enqueued_at), c.epoch(job.started_at), c.epoch(job.ended_at)
            cols[names[2]].append((enq - row["created"]) * 1000)
            cols[names[3]].append((st - row["created"]) * 1000)
            cols[names[4]].append((row["processed"] - st) * 1000)
            if end:
                cols[names[5]].append((end - row["processed"]) * 1000)
    c.print_table(["phase of one event at the steady rate", "n", "p50 ms", "p95 ms", "max ms"],
                  [c.stats_row(name, values, blank=True) for name, values in cols.items()],
                  title="Where the time goes: phases of the steady-rate events "
                        "(client clock, SQLite and RQ timestamps)")


def rq_body(jobs: list, label: str) -> list:
    phase = c.rq_phases(jobs)
    return [label, c.fmt(phase["in_horse"]), c.fmt(phase["wait"])]


def alone(s: c.Stack, count: int, clients: int, timeout: float) -> dict:
    """The API with the workers paused (events only queued), then the workers draining that backlog alone."""
    tag = "bench-alone"
    with c.Paused(s.procs, s.db_path) as paused:
        results, post_s = c.drive(count, clients, post_event(tag), s.api)
        time.sleep(0.2)
        resumed = time.time()
        paused.resume()
    wait_final(s, tag, count, timeout)
    ends = [r["processed"] for r in event_rows(s, tag).values() if r["processed"]]
    return {"api_rate": count / post_s, "post": c.ms_stats(r[2] for r in results),
            "drain_rate": count / (max(ends) - resumed)}


def lock_waits(s: c.Stack, args, count: int) -> None:
    """One throughput block through gunicorn and workers that time their SQL (``sql.timed_stack``): SQLite
    write-lock waits by side."""
    with sql.timed_stack(s, args.workers, args.threads, args.web_workers) as t:
        post_events(t, 20, args.clients, "bench-i-warm", args.timeout)
        time.sleep(1.2)  # every process has dumped its figures since the warm-up: subtracted below
        before = sql.lock_stats(t.stats_dir)
        result = post_events(t, count, args.clients, "bench-i", args.timeout)
        time.sleep(1.2)  # and dumped them again after the last event
    c.print_table(sql.LOCK_HEADERS, sql.lock_rows(sql.lock_stats(t.stats_dir), before),
                  title=f"SQLite write lock: {count} events in {result['elapsed']:.2f} s "
                        f"({count / result['elapsed']:.1f}/s, instrumented), ms unless said")
    print("  BEGIN wait = time in BEGIN IMMEDIATE, i.e. waiting for another process's write transaction (SQLite's\n"
          "  busy handler sleeps 1, 2, 5, 10, 15, 20, 25 ... ms between tries); lock held = BEGIN end -> COMMIT end.")


def in_process(s: c.Stack, n: int = 200) -> None:
    """The API handler (test client) and the job body, each in this process, timed (SQL: SQLAlchemy's events;
    Redis: the server's INFO commandstats) and then profiled: SQL vs Redis vs the rest."""
    from webapp.events import jobs as event_jobs

    app, auth = s.app, {"Authorization": f"Bearer {s.token}"}  # as the HTTP requests authenticate
    client = app.test_client()
    ids = [client.post(EVENTS, json={"user_id": "bench-p", "description": f"warm #{i}"}, headers=auth).get_json()["id"]
           for i in range(5)]
    for event_id in ids:
        with app.app_context():
            event_jobs.send_notification(event_id)  # the old per-event job: warms the same code paths
    kinds = ("POST /api/v1/events (test client)",)
    pending = lambda: s.query("SELECT count(*) FROM events WHERE status = 'pending'")[0][0]  # noqa: E731

    def one(kind: str, i: int) -> None:
        response = client.post(EVENTS, json={"user_id": "bench-p", "description": f"profiled #{i}"}, headers=auth)
        ids.append(response.get_json()["id"])

    def drain() -> tuple[int, float]:
        count, t0 = pending(), time.perf_counter()
        with app.app_context():
            delivered = event_jobs.deliver_pending()
        assert delivered == count and pending() == 0, (delivered, count)
        return count, (time.perf_counter() - t0) * 1000

    results = sql.time_in_process(app.extensions["db"].kw["bind"], s.redis,
                                {kind: (lambda i, kind=kind: one(kind, i)) for kind in kinds}, n)
    drained = drain()
    profiler = cProfile.Profile()
    profiler.enable()  # then profiled (cProfile slows Python down: only for the shares)
    for i in range(n // 2):
        one(kinds[0], i)
    drain()
    profiler.disable()
    rows = [[name, c.fmt(total), f"{x['statements']:.1f}", c.fmt(x["begin"]), c.fmt(x["sql"]), c.fmt(x["commit"]),
             f"{x['redis_calls']:.1f}", c.fmt(x["redis"]),
             c.fmt(total - x["begin"] - x["sql"] - x["commit"] - x["redis"])] for name, (total, x) in results.items()]
    c.print_table(["in-process, no contention (median of %d)" % n, "total ms", "SQL stmts", "BEGIN ms",
                   "SQL ms", "COMMIT ms", "Redis cmds", "Redis ms (server)", "Python ms (+ Redis I/O)"], rows,
                  title="One request in this process (the queue's jobs are emptied, not run)")
    print(f"  drain job body (jobs.deliver_pending) in this process: {drained[0]} pending events in "
          f"{drained[1]:.1f} ms, {drained[1] / max(1, drained[0]):.2f} ms per event "
          f"(batches of {event_jobs.DRAIN_BATCH})")
    c.print_profile(profiler, "cumulative", f"  heaviest calls of ours (cumulative), profiled pass of {n // 2} of each "
                    f"and one drain (cProfile inflates Python time):", restrict=r"webapp/(events|api|db|extensions)")
    c.print_profile(profiler, "tottime", f"  hottest functions (own time), profiled pass of {n // 2} of each "
                    f"(cProfile inflates Python time):")


def explain(args, s: c.Stack, a, b) -> None:
    if b is not None:
        phases(b["samples"])
    if a is not None:
        c.print_table(["RQ job, median ms", "started->ended (in the worker)", "enqueued->started (wait)"],
                      [rq_body(a["jobs"]["jobs"], "bare no-op job (throughput run)"),
                       rq_body(list({x["job"].id: x["job"] for x in (b or {}).get("samples", [])
                                     if x["job"] is not None}.values()), "event drain job (latency run)")],
                      title="Job time in the workers (RQ timestamps)")
        print(f"  worker time per job = workers / rate: bare {args.workers / a['jobs']['rate'] * 1000:.1f} ms; "
              f"per event {args.workers / a['events']['rate'] * 1000:.1f} ms, "
              f"{a['events']['jobs_run'] / a['events']['count']:.2f} drain jobs per event")
    n = min(args.count, 1000)
    split = alone(s, n, args.clients, args.timeout)
    rows = [["API alone (workers paused): POSTs/s", f"{split['api_rate']:.1f}",
             f"POST p50 {c.fmt(split['post']['p50'])} ms, p95 {c.fmt(split['post']['p95'])} ms"],
            ["workers alone (draining that backlog): events/s", f"{split['drain_rate']:.1f}", ""]]
    if a is not None:
        ev = a["events"]
        rows.append(["both at once (throughput run): POSTs/s while delivering", f"{ev['count'] / ev['phase1']:.1f}",
                     f"POST p50 {c.fmt(c.percentile(ev['ms'], 50))} ms, p95 {c.fmt(c.percentile(ev['ms'], 95))} ms"])
        rows.append(["both at once (throughput run): events delivered/s", f"{ev['rate']:.1f}", ""])
    c.print_table(["side", "per second", "note"], rows,
                  title=f"API side vs worker side ({n} events each, same stack; {os.cpu_count()} CPUs, "
                        f"load {os.getloadavg()[0]:.2f})")
    side = "worker" if split["drain_rate"] < split["api_rate"] else "API"
    print(f"  Verdict: the {side} side bounds the rate ({min(split['drain_rate'], split['api_rate']):.1f}/s alone; "
          f"both at once share {os.cpu_count()} CPUs and SQLite's one write lock).")
    if a is not None and a["events"]["count"] / a["events"]["phase1"] < args.target_rate:
        print(f"  The POSTs alone were answered at only {a['events']['count'] / a['events']['phase1']:.1f}/s while "
              f"the workers delivered: no delivery, however quick, beats the API's rate (one gunicorn process, "
              f"{args.threads} threads, one GIL); see the in-process request's split below.")
    for p in reversed(s.procs):
        c.stop_process(p)
    for step in (lambda: lock_waits(s, args, n), lambda: in_process(s)):
        try:
            step()
        except Exception as exc:
            print(f"(measurement failed: {exc!r})")
        s.queue().empty()


def post_mortem(s: c.Stack) -> None:
    """After a failed wait: what is still pending, what RQ holds, and the processes' last words."""
    from rq.job import Job

    try:
        for tag, status, n in s.query("SELECT user_id, status, count(*) FROM events GROUP BY user_id, status"):
            if status != "processed":
                print(f"  events of {tag}: {n} {status}")
        for row in s.query("SELECT id, user_id, attempts, created_at, queued_at FROM events "
                           "WHERE status = 'pending' ORDER BY created_at LIMIT 5"):
            print(f"  pending: {row}")
        q = s.queue()
        print(f"  RQ: {q.count} queued, {q.started_job_registry.count} started, "
              f"{q.failed_job_registry.count} failed, {q.finished_job_registry.count} finished")
        for job_id in q.failed_job_registry.get_job_ids()[:3]:
            job = Job.fetch(job_id, connection=s.redis)
            print(f"  failed job {job_id} {job.func_name}{job.args}: "
                  + " | ".join(c.job_traceback(s.redis, job_id, 3)))
    except Exception as exc:
        print(f"  (post-mortem query failed: {exc!r})")
    s.print_logs(3)


# --- (c) the token check ---------------------------------------------------------------------------------------------

def print_token_check(t: dict) -> None:
    rows = c.token_rows(t) + [
        c.diff_row("= unknown token - no token (the token check alone)", t["lookup"]),
        c.diff_row("= bearer 422 - no token 401 (token check + body check + validation)", t["bearer"]),
        c.diff_row("= bearer 422 - ping", t["bearer_ping"]), c.inproc_row(t)]
    c.print_table(["(c) token check, per request", "p50 ms", "p95 ms", "status"], rows,
                  title=f"(c) Token check: {t['rounds']} interleaved rounds, one keep-alive connection, workers idle; "
                        f"load average {t['load'][0]:.2f} -> {t['load'][1]:.2f} on {os.cpu_count()} CPUs")
    print(f"  Token check per request: {t['lookup'][0]:+.2f} ms p50 / {t['lookup'][1]:+.2f} ms p95 over HTTP, "
          f"{t['inproc']['p50'] / 1000:.2f} ms p50 in process.")


# --- main -------------------------------------------------------------------------------------------------------------

def main() -> int:
    args = parse_args()
    c.compile_bench()  # the workers import bench._common for the no-op jobs
    with c.stack("cutover-bench-events-", workers=args.workers, threads=args.threads, web_workers=args.web_workers,
                 EVENT_SWEEP_SECONDS=args.sweep_seconds) as s:
        load0 = os.getloadavg()[0]
        if args.warmup:
            bare_jobs(s, args.warmup, args.timeout)
            bare_http(s, args.warmup, args.clients, "ping")
            bare_http(s, args.warmup, args.clients, "post422")
            post_events(s, args.warmup, args.clients, "bench-warm", args.timeout)
        t0 = time.perf_counter()
        try:
            a = None if args.skip_throughput else throughput(args, s)
            load_a = os.getloadavg()[0]
            b = None if args.skip_latency else latency(args, s)
            load_b = os.getloadavg()[0]
            tc = (c.token_check(s.port, s.app, s.token, "POST", EVENTS, b"{}", 422, args.token_rounds)
                  if args.token_rounds > 0 else None)
        except Exception:
            import traceback

            traceback.print_exc(file=sys.stdout)
            print("The measurement failed; the state of the stack:")
            post_mortem(s)
            return 0
        spent = time.perf_counter() - t0
        met = report(args, a, b, load0, load_a, load_b)
        if tc is not None:
            print_token_check(tc)
        print(f"\nMeasured in {spent:.0f} s; load average now {os.getloadavg()[0]:.2f} (1 min) on "
              f"{os.cpu_count()} CPUs.")
        if (args.profile or not all(met)) and not args.no_explain:
            try:
                explain(args, s, a, b)
            except Exception as exc:  # the diagnosis must never hide the figures
                import traceback

                traceback.print_exc()
                print(f"(diagnosis failed: {exc!r})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
