"""Throughput: many trivial runs over many environments, against what two bare pytests in a row could do.

    .venv/bin/python bench/throughput.py                        # 200 runs over 20 environments, 2 workers
    .venv/bin/python bench/throughput.py --count 40 --bare 4    # quick smoke check

A private redis-server, a temporary DATA_DIR (SQLite), ``gunicorn --workers 1 --threads 4 wsgi:app`` and
``--workers`` × ``python worker.py`` are started; test_trivial.py (one passing test) is uploaded through the API.

* Measured: ``--count`` runs created through the API (HTTP, keep-alive, one client), run i on environment
  ``i mod --environments + 1``; the database is polled until every run is final. Rate = runs / (last ``finished_at``
  - the moment before the first POST).
* Baseline, same run: bare time = median wall time of ``python -m pytest test_trivial.py`` (same interpreter,
  scratch directory with a ``[pytest]`` pytest.ini); bound = workers × 1 / bare time (every worker running bare
  pytests back to back, as if pytest were the only cost and the workers did not slow each other down).

The runs are split into ``--rounds`` blocks alternating with blocks of bare pytests (bare, runs, bare, runs, bare),
so that load elsewhere on the machine weighs on both alike; their times are added up. Also measured in the bare
blocks, for the diagnosis: ``--workers`` bare pytests back to back in parallel (what this machine can really do).
Target: rate / bound >= 0.85. Reports only: exits 0 either way.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import _common as c  # noqa: E402
from bench import _runs as r  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=200, help="trivial runs (default 200)")
    p.add_argument("--environments", type=int, default=20, help="environments they are spread over (default 20)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--rounds", type=int, default=2, help="blocks the runs are split into (default 2)")
    p.add_argument("--bare", type=int, default=12, help="bare pytests in all, serial (default 12)")
    p.add_argument("--parallel", type=int, default=24,
                   help="bare pytests in all, run --workers at a time (diagnostic, default 24)")
    p.add_argument("--target", type=float, default=0.85, help="target rate / bound (default 0.85)")
    p.add_argument("--timeout", type=float, default=600.0, help="give up waiting after this many seconds")
    return p.parse_args()


def run_block(s: r.RunStack, api: c.Client, path: str, first: int, count: int, environments: int, timeout: float) -> dict:
    start = time.time()
    t0 = time.perf_counter()
    ids = [api.create_run((first + i) % environments + 1, [path])["id"] for i in range(count)]
    create_s = time.perf_counter() - t0
    s.wait_final(ids, timeout, interval=0.02)
    rows = s.rows(ids)
    end = max(row["finished_at"] for row in rows.values())
    return {"ids": ids, "rows": rows, "start": start, "elapsed": end - start, "create": create_s,
            "not_ok": [row for row in rows.values() if row["state"] != "success"]}


def parallel_bare(bare: list[r.Bare], count: int) -> dict:
    """``count`` bare pytests, ``len(bare)`` at a time (one scratch directory per thread); rate per second."""
    free = list(bare)
    results, elapsed = c.drive(count, len(bare), lambda b, i: b.run("test_trivial.py")["wall"], setup=free.pop)
    return {"elapsed": elapsed, "count": count, "walls": [x[4] for x in results]}


def main() -> int:
    args = parse_args()
    with r.stack("cutover-bench-throughput-", workers=args.workers) as s:
        api = s.api()
        path = api.upload("bench", "test_trivial.py", r.TRIVIAL)
        bares = [r.Bare(s.tmp / f"bare-{i}", {"test_trivial.py": r.TRIVIAL}) for i in range(args.workers)]
        app_procs = [s.gunicorn, *s.workers]

        warm = run_block(s, api, path, 0, 2 * args.workers, args.environments, args.timeout)  # not measured
        bares[0].run("test_trivial.py")
        rounds = max(1, args.rounds)
        serial, parallel, blocks = [], [], []
        load_before = c.load_line()

        def bare_block(k: int) -> None:
            n_serial = args.bare * (k + 1) // (rounds + 1) - args.bare * k // (rounds + 1)
            n_parallel = args.parallel * (k + 1) // (rounds + 1) - args.parallel * k // (rounds + 1)
            serial.extend(bares[0].run("test_trivial.py") for _ in range(n_serial))
            if n_parallel:
                parallel.append(parallel_bare(bares, n_parallel))

        first = len(warm["ids"])
        cpu_app = 0.0
        for k in range(rounds):
            bare_block(k)
            n = args.count * (k + 1) // rounds - args.count * k // rounds
            cpu0 = r.tree_cpu(app_procs)
            blocks.append(run_block(s, api, path, first, n, args.environments, args.timeout))
            time.sleep(0.3)  # the last work horses exit and are reaped
            cpu_app += r.tree_cpu(app_procs) - cpu0
            first += n
        bare_block(rounds)
        load_after = c.load_line(cpus=False)

        bare_s = c.median([b["wall"] for b in serial])
        bound = args.workers / bare_s
        elapsed = sum(b["elapsed"] for b in blocks)
        rate = args.count / elapsed
        ratio = rate / bound
        par_rate = sum(p["count"] for p in parallel) / sum(p["elapsed"] for p in parallel) if parallel else float("nan")
        not_ok = [row for b in blocks for row in b["not_ok"]]
        c.print_table(["", "runs", "seconds", "runs/s", "ratio to bound"], [
            [f"bound: {args.workers} x 1 / bare (bare = median {bare_s * 1000:.0f} ms of {len(serial)}) (baseline)",
             "-", "-", f"{bound:.2f}", "1.00"],
            [f"diagnostic: {args.workers} bare pytests at a time, back to back",
             sum(p["count"] for p in parallel), f"{sum(p['elapsed'] for p in parallel):.2f}", f"{par_rate:.2f}",
             f"{par_rate / bound:.2f}"],
            [f"runs through the app ({args.environments} environments, {args.workers} workers)", args.count,
             f"{elapsed:.2f}", f"{rate:.2f}", f"{ratio:.2f}"],
        ], title=f"Throughput: {args.count} trivial runs in {rounds} blocks, alternating with bare pytest blocks "
                 f"({load_before} -> {load_after})")
        print("  per block: " + "; ".join(
            f"{len(b['ids']) / b['elapsed']:.2f} runs/s (POSTs took {b['create']:.2f} s)" for b in blocks))
        print(f"  {len(not_ok)} run(s) did not succeed")
        for row in not_ok[:5]:
            print(f"    run {row['id']}: {row['state']} {row['error']!r}")
        explain(s, blocks, serial, bare_s, elapsed, cpu_app, args.workers)
        met = ratio >= args.target and not not_ok
        print("  " + r.pytest_plugins_line())
        print(f"\nratio = rate / bound = {rate:.2f} / {bound:.2f} = {ratio:.2f}"
              f"  (against what {args.workers} parallel bare pytests really did here: {rate / par_rate:.2f})")
        print(f"Target: ratio >= {args.target:g}: {'MET' if met else 'MISSED'}")
        c.record(f"{args.count} runs, {args.environments} envs, {args.workers} workers / bound",
                 f"{ratio:.2f} ({rate / par_rate:.2f} vs parallel bare)", f">= {args.target:g}", met)
        api.close()
    return 0


def explain(s: r.RunStack, blocks: list[dict], serial: list[dict], bare_s: float, elapsed: float, cpu_app: float,
            workers: int) -> None:
    """Where the workers' time goes: inside pytest, between a run's dispatch and pytest, and idle between runs."""
    from redis import Redis
    from rq.job import Job

    rows = [row for b in blocks for row in b["rows"].values()]
    jobs = {j.id: j for j in Job.fetch_many([row["job_id"] for row in rows], connection=Redis.from_url(
        s.settings.redis_url)) if j}
    by_worker: dict[str, list[dict]] = {}
    pytest_wall, pytest_cpu, before, after, gaps, started = [], [], [], [], [], []
    for row in rows:
        imported, proc_start = s.stamp(row["id"])
        ended, cpu = s.ended(row["id"])
        pytest_wall.append((ended - proc_start) * 1000)
        pytest_cpu.append(cpu * 1000)
        job = jobs.get(row["job_id"])
        if job is None or not job.started_at or not job.ended_at:
            continue
        rq_start, rq_end = c.epoch(job.started_at), c.epoch(job.ended_at)
        before.append((proc_start - rq_start) * 1000)
        after.append((rq_end - ended) * 1000)
        started.append((row["started_at"] - row["dispatched_at"]) * 1000)
        by_worker.setdefault(job.worker_name or "?", []).append({"start": rq_start, "end": rq_end})
    for jobs_of in by_worker.values():
        jobs_of.sort(key=lambda j: j["start"])
        gaps += [(b["start"] - a["end"]) * 1000 for a, b in zip(jobs_of, jobs_of[1:])]
    bare_wall = [(b["ended"] - b["proc_start"]) * 1000 for b in serial]
    c.print_table(["per run (ms)", "n", "p50", "p95", "max"], [
        c.stats_row("pytest process start -> end stamp, in a run (wall)", pytest_wall),
        c.stats_row("  the same, bare pytest alone (wall)", bare_wall),
        c.stats_row("pytest CPU in a run", pytest_cpu),
        c.stats_row("  the same, bare pytest alone", [b["cpu"] * 1000 for b in serial]),
        c.stats_row("RQ job started -> pytest process start (claim, run dir, Popen)", before),
        c.stats_row("pytest end stamp -> RQ job ended (exit, log drain, junit, finish, hand-over, RQ)", after),
        c.stats_row("dispatched_at -> started_at (queue wait for a free worker included)", started),
        c.stats_row("a worker's idle gap: its job ended -> its next job started", gaps),
    ], title="Where the time goes (RQ job times, the runs' stored times, the test module's own stamps)")
    n = len(rows)
    shutdown = c.median(b["cpu_after_atexit"] for b in serial) * 1000
    pytest_total = sum(pytest_cpu) / n + shutdown
    print(f"  CPU of gunicorn + workers + their pytests over the run blocks: {cpu_app:.1f} s = "
          f"{cpu_app / n * 1000:.0f} ms per run, of which pytest ~{pytest_total:.0f} ms (mean {sum(pytest_cpu) / n:.0f} ms "
          f"up to its end stamp + {shutdown:.0f} ms\n  interpreter shutdown, the bare median), so the app's own share is "
          f"~{cpu_app / n * 1000 - pytest_total:.0f} ms per run; {os.cpu_count()} CPUs x {elapsed:.1f} s = "
          f"{os.cpu_count() * elapsed:.1f} CPU-s were there")
    print(f"  the bound assumes {workers} pytests back to back at the serial bare time; a run's pytest alone took "
          f"{c.median(pytest_wall):.0f} ms wall (bare alone: {c.median(bare_wall):.0f} ms)")


if __name__ == "__main__":
    sys.exit(main())
