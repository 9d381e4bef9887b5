"""Migration throughput through real workers, against bare RQ jobs on the same workers.

    .venv/bin/python bench/migrations.py                 # 200 migrations, 2 workers
    .venv/bin/python bench/migrations.py --count 20      # quick smoke check

A private redis-server and a temporary DATA_DIR (SQLite) are set up; ``--count`` workloads and migrations are
created through the app's services (not timed); ``--workers`` × ``python worker.py`` (forking RQ workers, cwd =
repo root, MIGRATION_DURATION_SECONDS=0) are started.

Both are run in ``--rounds`` alternating blocks (bare, migrations, migrations, bare, ...) and their times added up,
so that load elsewhere on the machine weighs on both alike.

* Baseline: ``--count`` bare no-op jobs (``bench._common.noop``) on queue "default": jobs/second from the first
  enqueue to the last job's end.
* Measured: for each migration the run service (or ``--via api``: POST /api/v1/migrations/<id>/run through the
  in-process test client), then the database is polled until every migration is ``success``: migrations/second
  from the first run call to the last ``finished_at``.

Target: migration rate / bare rate >= 0.6 (issue 15). Where the time goes is reported (always with --profile, and
whenever the target is missed). Reports only: exits 0 either way.
"""
from __future__ import annotations

import argparse
import cProfile
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import _common as c  # noqa: E402
from bench import _seed as seeding  # noqa: E402
from bench import _sql as sql  # noqa: E402

def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=200, help="migrations, and bare jobs (default 200)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--warmup", type=int, default=4, help="untimed jobs of each kind first (default 4)")
    p.add_argument("--rounds", type=int, default=4,
                   help="alternating blocks of bare jobs and migrations the counts are split into (default 4)")
    p.add_argument("--via", choices=("service", "api"), default="service",
                   help="run each migration with the run service (default) or POST .../run (in-process client)")
    p.add_argument("--target", type=float, default=0.6, help="target ratio migration rate / bare rate (default 0.6)")
    p.add_argument("--timeout", type=float, default=300.0, help="give up waiting after this many seconds")
    p.add_argument("--warm-workers", action="store_true",
                   help="what-if: start each worker so that it runs one migration job in-process before it starts "
                        "forking (instead of plain `python worker.py`), to measure the recommended warm-up fix")
    p.add_argument("--profile", action="store_true", help="print where the time goes even when the target is met")
    return p.parse_args()


# --- setup ---------------------------------------------------------------------------------------------------

def create_records(app, count: int, first_ip: int) -> list[int]:
    """``count`` workloads and one migration of each, through the services (not timed)."""
    from webapp.migrations import services as migrations
    from webapp.workloads import services as workloads

    ids = []
    for i in range(first_ip, first_ip + count):
        with app.app_context():
            w = workloads.create({"ip": seeding.ip_for(i), "credentials": {"username": "admin", "password": "s3cret!",
                                                                      "domain": "CORP"},
                                  "storage": seeding.STORAGE})
            m = migrations.create({"source_id": w.id, "selected_mount_points": ["C:\\", "D:\\"],
                                   "target": {"cloud_type": "aws",
                                              "cloud_credentials": {"username": "cloud", "password": "cl0ud!"}}})
            ids.append(m.id)
    return ids


# --- the two measurements -------------------------------------------------------------------------------------

def run_migrations(app, ids: list[int], via: str, db_path: str, timeout: float, token: str | None = None) -> dict:
    """Run every migration; poll the database until all are final. Rate from the first run call to the last
    ``finished_at``. ``--via api`` sends ``token`` (the admin's) as ``Authorization: Bearer``."""
    from webapp.migrations import services as migrations

    client = app.test_client() if via == "api" else None
    headers = {"Authorization": f"Bearer {token}"} if via == "api" else {}
    start_wall, t0 = time.time(), time.perf_counter()
    for mid in ids:
        if client is not None:
            response = client.post(f"/api/v1/migrations/{mid}/run", json={}, headers=headers)
            if response.status_code != 202:
                raise RuntimeError(f"POST /api/v1/migrations/{mid}/run: {response.status_code} {response.get_data()!r}")
        else:
            with app.app_context():
                migrations.run(mid)
    enqueue_s = time.perf_counter() - t0

    marks = ",".join("?" * len(ids))

    def final_count() -> int:
        # A connection per poll, as the app itself (NullPool) would: one held open for the whole run would keep
        # every worker connection from being the last one and so change SQLite's checkpoint-on-close behaviour.
        con = sqlite3.connect(db_path, timeout=30)
        try:
            return con.execute(f"SELECT count(*) FROM migrations WHERE id IN ({marks}) "
                               f"AND state IN ('success', 'error')", ids).fetchone()[0]
        finally:
            con.close()

    c.wait_until(lambda: final_count() >= len(ids), timeout=timeout, interval=0.02,
                 message=f"{len(ids)} migrations to finish")
    poll_s = time.perf_counter() - t0
    con = sqlite3.connect(db_path, timeout=30)
    rows = con.execute(f"SELECT id, state, error, job_id, queued_at, started_at, finished_at FROM migrations "
                       f"WHERE id IN ({marks})", ids).fetchall()
    con.close()
    ends = [c.epoch(r[6]) for r in rows if r[6]]
    elapsed = (max(ends) - start_wall) if len(ends) == len(ids) else poll_s
    errors = [r for r in rows if r[1] != "success"]
    return {"elapsed": elapsed, "enqueue": enqueue_s, "rate": len(ids) / elapsed, "errors": errors, "rows": rows,
            "start": start_wall}


def combine(parts: list[dict], count: int) -> dict:
    """The blocks of one kind as one run: their times added up."""
    elapsed = sum(p["elapsed"] for p in parts)
    return {"elapsed": elapsed, "enqueue": sum(p["enqueue"] for p in parts), "rate": count / elapsed,
            "failed": sum(p.get("failed", 0) for p in parts), "errors": [e for p in parts for e in p.get("errors", [])],
            "jobs": [j for p in parts for j in p.get("jobs", [])], "rows": [r for p in parts for r in p.get("rows", [])]}


# --- where the time goes -----------------------------------------------------------------------------------------

def explain(app, settings, redis_conn, bare: dict, mig: dict, workers: int, count: int) -> None:
    """Per-job figures from RQ and the database, then one migration job body profiled in-process."""
    from rq.job import Job

    mig_jobs = [j for j in Job.fetch_many([r[3] for r in mig["rows"]], connection=redis_conn) if j]
    b, m = c.rq_phases(bare["jobs"]), c.rq_phases(mig_jobs)
    body = [(c.epoch(r[6]) - c.epoch(r[5])) * 1000 for r in mig["rows"] if r[5] and r[6]]
    by_job = {j.id: j for j in mig_jobs}
    claim, tail_ms = [], []  # RQ started -> DB started_at; DB finished_at -> RQ ended
    for r in mig["rows"]:
        job = by_job.get(r[3])
        if job and job.started_at and job.ended_at and r[5] and r[6]:
            claim.append((c.epoch(r[5]) - c.epoch(job.started_at)) * 1000)
            tail_ms.append((c.epoch(job.ended_at) - c.epoch(r[6])) * 1000)

    def med(values):
        return f"{statistics.median(values):.1f}" if values else "-"
    rows = [
        ["enqueue phase, all jobs (s)", f"{bare['enqueue']:.2f}", f"{mig['enqueue']:.2f}"],
        ["enqueue cost per job (ms, producer side)", f"{bare['enqueue'] / count * 1000:.1f}",
         f"{mig['enqueue'] / count * 1000:.1f}"],
        ["worker time per job = workers / rate (ms)", f"{workers / bare['rate'] * 1000:.1f}",
         f"{workers / mig['rate'] * 1000:.1f}"],
        ["RQ started->ended, in the horse (median ms)", f"{b['in_horse']:.1f}", f"{m['in_horse']:.1f}"],
        ["  of which RQ started -> DB started_at: connect, BEGIN IMMEDIATE wait, claim", "-", med(claim)],
        ["  of which DB started_at -> finished_at: claim commit, progress write", "-", med(body)],
        ["  of which DB finished_at -> RQ ended: final UPDATE + commit, RQ result", "-", med(tail_ms)],
        ["RQ enqueued->started (median ms)", f"{b['wait']:.1f}", f"{m['wait']:.1f}"],
    ]
    c.print_table(["per-job figure", "bare no-op", "migration"], rows, title="Where the time goes (per job)")
    print("  The difference in 'worker time per job' is what a migration adds to a bare forked RQ job; the fork,\n"
          "  RQ bookkeeping and Redis round trips are common to both.")
    if mig["enqueue"] >= 0.8 * mig["elapsed"]:
        print(f"  The run calls took {mig['enqueue']:.2f} s of {mig['elapsed']:.2f} s: the migration rate is bounded\n"
              "  by this one process calling the run service one migration after the other (its SQL, its commit,\n"
              "  its wait for SQLite's write lock while the workers claim and end theirs, the CPU it shares with\n"
              "  them), not by the workers.")

    # One migration job body, in-process, profiled (no fork): SQL statements and their time, plus the hot spots.
    from webapp.migrations import jobs as migration_jobs
    from webapp.migrations import services as migrations

    probe_ids = create_records(app, 3 * PROBE_EACH + 1, first_ip=count + 1000)
    extra = create_records(app, 20, first_ip=count + 2000)
    with app.app_context():
        for mid in probe_ids + extra:
            migrations.run(mid)
    from rq import Queue

    Queue("default", connection=redis_conn).empty()  # nobody must take these: they run below, without RQ

    # The job body as RQ runs it (forked from a parent that never ran a job) against the alternatives, measured
    # in a fresh interpreter that starts like worker.py does.
    probe = subprocess.run([sys.executable, "-c", "import sys; from bench.migrations import fork_probe; "
                            "fork_probe(sys.argv[1:])", *map(str, probe_ids)],
                           cwd=c.ROOT, env=settings.env(), capture_output=True, text=True, timeout=300)
    try:
        figures = json.loads(probe.stdout.strip().splitlines()[-1])
        c.print_table(["one migration job body (jobs.run_migration), median of %d" % PROBE_EACH, "ms in job",
                       "ms fork+job+wait"],
                      [["forked from a parent that never ran a job (what RQ's work horse does)",
                        f"{figures['cold'][0]:.1f}", f"{figures['cold'][1]:.1f}"],
                       ["forked from a parent that ran one job first (warm SQLAlchemy caches)",
                        f"{figures['warm'][0]:.1f}", f"{figures['warm'][1]:.1f}"],
                       ["in-process, no fork (warm)", f"{figures['inproc'][0]:.1f}", "-"]],
                      title="Fork cost: the same job body cold-forked, warm-forked and in-process")
    except (IndexError, ValueError, KeyError):
        print(f"(fork probe failed: {probe.returncode}\n{probe.stderr[-2000:]})")
    profiler = cProfile.Profile()
    totals = []
    with sql.SqlTimer(app.extensions["db"].kw["bind"]) as timer:
        for mid in extra:
            t0 = time.perf_counter()
            profiler.enable()
            with app.app_context():
                result = migration_jobs.run_migration(mid)
            profiler.disable()
            totals.append((time.perf_counter() - t0) * 1000)
            assert result == "success", result
    stats = {**timer.stats, "statements": timer.stats["statements"] + len(timer.stats["begin_ms"]),  # BEGIN too
             "sql_ms": timer.stats["sql_ms"] + sum(timer.stats["begin_ms"])}
    n = len(extra)
    print(f"\nOne migration job body in-process (jobs.run_migration, no fork, median of {n}): "
          f"{statistics.median(totals):.1f} ms; per job {stats['statements'] / n:.0f} SQL statements "
          f"({stats['sql_ms'] / n:.1f} ms in SQLite), {stats['commits'] / n:.0f} commits, "
          f"{stats['connects'] / n:.0f} new SQLite connections (NullPool)")
    c.print_profile(profiler, "tottime", "  hottest functions (own time, all runs):")


PROBE_EACH = 15


# ``worker.py`` plus a warm-up: one real migration job body (BENCH_WARM_MIGRATION_ID) run in the worker process
# before it starts forking. For --warm-workers only; not how the app starts its workers. Inline (python -c), so that
# the worker does not import bench._common itself: the bare jobs' horses import it, as with ``python worker.py``.
WARM_WORKER = (
    "import os\n"
    "from webapp import create_app\n"
    "from webapp.migrations import jobs\n"
    "from webapp.workers import start_worker\n"
    "app = create_app()\n"
    "with app.app_context():\n"
    "    jobs.run_migration(int(os.environ['BENCH_WARM_MIGRATION_ID']))\n"
    "start_worker(app)\n"
)


def fork_probe(argv: list[str]) -> None:
    """Run in a fresh interpreter configured from the environment, as ``worker.py`` is: the job body forked from
    a parent that never ran one, then from a parent that did, then in-process. Prints one JSON line."""
    import logging

    logging.disable(logging.CRITICAL)
    from webapp import create_app
    from webapp.migrations import jobs as migration_jobs

    app = create_app()
    ids = [int(a) for a in argv]

    def forked(mid: int) -> tuple[float, float]:
        read, write = os.pipe()
        t0 = time.perf_counter()
        pid = os.fork()
        if pid == 0:  # the child: like RQ's work horse, an app context, the job, exit
            os.close(read)
            t1 = time.perf_counter()
            try:
                with app.app_context():
                    migration_jobs.run_migration(mid)
            finally:
                os.write(write, f"{(time.perf_counter() - t1) * 1000:.3f}".encode())
                os._exit(0)
        os.close(write)
        inner = float(os.read(read, 64) or "nan")
        os.close(read)
        os.waitpid(pid, 0)
        return inner, (time.perf_counter() - t0) * 1000

    def in_process(mid: int) -> tuple[float, float]:
        t0 = time.perf_counter()
        with app.app_context():
            migration_jobs.run_migration(mid)
        return (time.perf_counter() - t0) * 1000, float("nan")

    def median(pairs):
        return [statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)]

    n = PROBE_EACH
    cold = [forked(mid) for mid in ids[:n]]
    in_process(ids[n])  # warms this parent
    warm = [forked(mid) for mid in ids[n + 1:2 * n + 1]]
    inproc = [in_process(mid) for mid in ids[2 * n + 1:3 * n + 1]]
    print(json.dumps({"cold": median(cold), "warm": median(warm), "inproc": median(inproc)}))


# --- main -------------------------------------------------------------------------------------------------------------

def main() -> int:
    args = parse_args()
    with c.stack("cutover-bench-migrations-", workers=0, gunicorn=False, MIGRATION_DURATION_SECONDS=0) as s:
        app, settings, queue = s.app, s.settings, s.queue()
        t0 = time.perf_counter()
        warm_ids = create_records(app, args.warmup, first_ip=1)
        ids = create_records(app, args.count, first_ip=args.warmup + 1)
        print(f"Created {args.count + args.warmup} workloads and migrations through the services "
              f"in {time.perf_counter() - t0:.1f} s (not timed).")
        c.compile_bench()  # the work horses import bench._common for every bare job
        if args.warm_workers:
            # What-if for the recommended fix: each worker runs one migration job body in its own process
            # before it starts forking, so every work horse inherits warm SQLAlchemy/crypto state.
            warm_parent_ids = create_records(app, args.workers, first_ip=args.count + args.warmup + 1)
            with app.app_context():
                from webapp.migrations import services as migrations

                for mid in warm_parent_ids:
                    migrations.run(mid)
            queue.empty()
            s.workers = c.start_workers(settings, args.workers, s.tmp, argv=[sys.executable, "-c", WARM_WORKER],
                                        env_for=lambda i: {"BENCH_WARM_MIGRATION_ID": str(warm_parent_ids[i])})
        else:
            s.workers = c.start_workers(settings, args.workers, s.tmp)
        load = os.getloadavg()[0]
        token = c.app_token(app, settings, name="bench-migrations") if args.via == "api" else None

        if args.warmup:  # forks, imports and first connections happen here, not in the timed runs
            c.bare_jobs(queue, args.warmup, args.timeout, interval=0.005)
            run_migrations(app, warm_ids, args.via, s.db_path, args.timeout, token)
        # Alternating blocks (bare, migrations, migrations, bare, ...): a change of load on the machine during
        # the run then weighs on both figures alike instead of on whichever ran second.
        blocks = [ids[lo:hi] for lo, hi in c.split(len(ids), max(1, min(args.rounds, args.count)))]
        bare_parts, mig_parts = [], []
        c.alternate(len(blocks),
                    lambda r: bare_parts.append(c.bare_jobs(queue, len(blocks[r]), args.timeout, interval=0.005)),
                    lambda r: mig_parts.append(run_migrations(app, blocks[r], args.via, s.db_path, args.timeout,
                                                              token)))
        bare, mig = combine(bare_parts, args.count), combine(mig_parts, args.count)

        ratio = mig["rate"] / bare["rate"]
        c.print_table(
            ["run", "jobs", "seconds", "per second", "enqueue phase s", "not ok"],
            [["bare no-op RQ jobs (baseline)", args.count, f"{bare['elapsed']:.2f}", f"{bare['rate']:.1f}",
              f"{bare['enqueue']:.2f}", bare["failed"]],
             [f"migrations (run via {args.via})", args.count, f"{mig['elapsed']:.2f}", f"{mig['rate']:.1f}",
              f"{mig['enqueue']:.2f}", len(mig["errors"])]],
            title=f"Throughput: {args.workers} workers "
                  f"({'warmed before forking: --warm-workers' if args.warm_workers else 'python worker.py'}), "
                  f"MIGRATION_DURATION_SECONDS=0, "
                  f"load average {load:.2f} -> {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
        for row in mig["errors"][:5]:
            print(f"  migration {row[0]} ended {row[1]}: {row[2]}")
            if traceback := c.job_traceback(s.redis, row[3]):
                print("    RQ says: " + "\n    ".join(traceback))
        print("  per block (jobs/s, bare | migrations | ratio): " + "; ".join(
            f"{b['rate']:.1f} | {m['rate']:.1f} | {m['rate'] / b['rate']:.2f}" for b, m in zip(bare_parts, mig_parts)))
        met = ratio >= args.target and not mig["errors"]
        print(f"\nratio = migration rate / bare rate = {mig['rate']:.1f} / {bare['rate']:.1f} = {ratio:.2f}")
        print(f"Target: ratio >= {args.target:g}: {'MET' if met else 'MISSED'}"
              + ("" if not mig["errors"] else f" ({len(mig['errors'])} migration(s) did not succeed)"))
        c.record("migrations/s ÷ bare RQ jobs/s (same workers, same run)",
                 f"{ratio:.2f} ({mig['rate']:.0f} / {bare['rate']:.0f} per s)"
                 + (f", {len(mig['errors'])} not ok" if mig["errors"] else ""), f">= {args.target:g}", met)

        for proc in s.workers:
            c.stop_process(proc)
        if not met or args.profile:
            try:
                explain(app, settings, s.redis, bare, mig, args.workers, args.count)
            except Exception as exc:  # the diagnosis must never hide the figures
                print(f"(profiling failed: {exc!r})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
