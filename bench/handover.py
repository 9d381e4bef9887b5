"""Handover: how fast an environment goes from one run's end to the next queued run's pytest.

    .venv/bin/python bench/handover.py                 # 1 run of a 1 s test, then 50 trivial runs queued behind it
    .venv/bin/python bench/handover.py --count 10      # quick smoke check

A private redis-server, a temporary DATA_DIR (SQLite), ``gunicorn --workers 1 --threads 4 wsgi:app`` and
``--workers`` × ``python worker.py`` are started. Two test files are uploaded through the API: test_one_second.py
(sleeps 1 s) and test_trivial.py (one passing test). Both record, at import (module level), ``time.time()`` and
their process's start (from /proc/self/stat, 10 ms clock ticks) into ``./started.txt`` - the run's directory
``DATA_DIR/runs/<id>/``, the executor's cwd. Then, through the API (HTTP), one run of the 1 s test and right behind
it ``--count`` runs of the trivial test, all on one environment, so that every trivial run waits in line and is
handed the environment when the run before it ends. For each consecutive pair (previous, next):

* handover = previous ``finished_at`` -> next ``started_at``: the dispatch itself (lock release, dispatch query and
  claim, RQ enqueue, a worker's dequeue and fork, the run's claim). Target: p95 <= 50 ms.
* previous ``finished_at`` -> next pytest's module import: the handover, plus the run's directory being prepared and
  pytest spawned (``started_at`` -> process start), plus pytest's own start-up (process start -> import of the test
  module: interpreter, pytest and its plugins, collection).

Baseline, same run (half before, half after the queue): a bare ``python -m pytest test_trivial.py`` in a scratch
directory, from ``subprocess`` spawn to the module import - pytest's own start-up, which is not ours; also the
executor's exact command (flags, scrubbed environment, rlimits) by hand. Both with PYTEST_DISABLE_PLUGIN_AUTOLOAD=1,
as the executor runs pytest: the venv's own test plugins would add most of a second that no run pays. Reports only: exits 0 either way.

Pool runs (issue 13), same stack, right after: the environment gets a label no other environment carries, and
the same queue (one 1 s run for the environment, then ``--count`` trivial runs) is made of runs that ask for that
pool instead (``"pool": "bench-pool"``, no environment_id): each waits with no environment and is given it when the
run before it ends. Its handover p95 (target <= 50 ms too) and the ratio to the exact-environment handover p95
measured above are printed.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import _common as c  # noqa: E402
from bench import _runs as r  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=50, help="trivial runs queued behind the 1 s run (default 50)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--environment", type=int, default=1, help="the environment (default 1)")
    p.add_argument("--bare", type=int, default=10, help="bare pytest baselines, half before, half after (default 10)")
    p.add_argument("--target-ms", type=float, default=50.0, help="p95 target of finished_at -> started_at (default 50)")
    p.add_argument("--timeout", type=float, default=300.0, help="give up waiting after this many seconds")
    return p.parse_args()


def bare_block(bare: r.Bare, n: int, out: dict) -> None:
    for i in range(n):  # alternate the two commands, so that both see the same load
        for kind in (("bare", "executor") if i % 2 == 0 else ("executor", "bare")):
            out[kind].append(bare.run("test_trivial.py", kind))


POOL = "bench-pool"


def handovers(rows: dict, order: list[int]) -> list[float]:
    """finished_at -> next started_at (ms) of each consecutive pair whose next run was waiting when the other ended."""
    found = []
    for prev_id, next_id in zip(order, order[1:]):
        prev, nxt = rows[prev_id], rows[next_id]
        if None not in (prev["finished_at"], nxt["started_at"]) and nxt["created_at"] < prev["finished_at"]:
            found.append((nxt["started_at"] - prev["finished_at"]) * 1000)
    return found


def pool_case(s, api, args, one_second: str, trivial: str) -> tuple[list[float], int]:
    """The same queue on the environment, of pool runs: (handovers in ms, runs that did not succeed)."""
    api.json("PATCH", f"/api/v1/environments/{args.environment}", {"labels": [POOL]})
    head = api.create_run(args.environment, [one_second])["id"]
    ids = [api.json("POST", "/api/v1/runs", {"username": api.username, "pool": POOL, "test_files": [trivial]},
                    expect=201)["id"] for _ in range(args.count)]
    s.wait_final([head, *ids], args.timeout)
    rows = s.rows([head, *ids])
    wrong = sum(rows[i]["state"] != "success" or rows[i]["environment_id"] != args.environment for i in ids)
    return handovers(rows, [head, *ids]), wrong


def main() -> int:
    args = parse_args()
    with r.stack("cutover-bench-handover-", workers=args.workers) as s:
        api = s.api()
        one_second = api.upload("bench", "test_one_second.py", r.ONE_SECOND)
        trivial = api.upload("bench", "test_trivial.py", r.TRIVIAL)
        bare = r.Bare(s.tmp / "bare", {"test_trivial.py": r.TRIVIAL})
        baselines = {"bare": [], "executor": []}

        # Warm-up, not measured: a run on each worker (another environment) and a bare pytest of each kind.
        warm = [api.create_run((args.environment + i) % 100 + 1, [trivial])["id"] for i in range(args.workers)]
        s.wait_final(warm, args.timeout)
        bare_block(bare, 1, {"bare": [], "executor": []})
        bare_block(bare, args.bare // 2, baselines)

        load_before = c.load_line()
        t0 = time.perf_counter()
        head = api.create_run(args.environment, [one_second])["id"]
        ids = [api.create_run(args.environment, [trivial])["id"] for _ in range(args.count)]
        create_s = time.perf_counter() - t0
        s.wait_final([head, *ids], args.timeout)
        load_after = c.load_line(cpus=False)
        bare_block(bare, args.bare - args.bare // 2, baselines)

        rows = s.rows([head, *ids])
        from redis import Redis
        from rq.job import Job

        jobs = {j.id: j for j in Job.fetch_many([row["job_id"] for row in rows.values() if row["job_id"]],
                                                connection=Redis.from_url(s.settings.redis_url)) if j}
        order = [head, *ids]
        not_ok = [rows[i] for i in order if rows[i]["state"] != "success"]
        handover, to_dispatch, to_claim, to_proc, proc_to_import, to_import, late = [], [], [], [], [], [], 0
        end_to_proc = []
        in_queue, rq_to_claim = [], []
        for prev_id, next_id in zip(order, order[1:]):
            prev, nxt = rows[prev_id], rows[next_id]
            if None in (prev["finished_at"], nxt["started_at"], nxt["dispatched_at"]):
                continue
            if nxt["created_at"] >= prev["finished_at"]:
                late += 1  # created after the previous run ended: not a handover, it was dispatched on create
                continue
            imported, proc_start = s.stamp(next_id)
            end = prev["finished_at"]
            handover.append((nxt["started_at"] - end) * 1000)
            to_dispatch.append((nxt["dispatched_at"] - end) * 1000)
            to_claim.append((nxt["started_at"] - nxt["dispatched_at"]) * 1000)
            job = jobs.get(nxt["job_id"])
            if job is not None and job.enqueued_at and job.started_at:
                in_queue.append((c.epoch(job.started_at) - c.epoch(job.enqueued_at)) * 1000)
                rq_to_claim.append((nxt["started_at"] - c.epoch(job.started_at)) * 1000)
            to_proc.append((proc_start - nxt["started_at"]) * 1000)
            proc_to_import.append((imported - proc_start) * 1000)
            to_import.append((imported - end) * 1000)
            end_to_proc.append((proc_start - end) * 1000)
        bare_import = [b["to_import"] * 1000 for b in baselines["bare"]]
        bare_proc = [b["to_proc"] * 1000 for b in baselines["bare"]]
        exec_import = [b["to_import"] * 1000 for b in baselines["executor"]]

        headers = ["interval (ms)", "n", "p50", "p95", "max"]
        c.print_table(headers, [
            c.stats_row("handover: prev finished_at -> next started_at  [target]", handover),
            c.stats_row("  of which finished_at -> dispatched_at (release, dispatch query, claim commit)", to_dispatch),
            c.stats_row("  of which dispatched_at -> started_at (RQ enqueue, a worker takes it, run claim)", to_claim),
            c.stats_row("    of which the job waits in the RQ queue (enqueued_at -> RQ started_at)", in_queue),
            c.stats_row("    of which RQ started_at -> the run's started_at", rq_to_claim),
            c.stats_row("next started_at -> pytest process start (/proc, 10 ms ticks)", to_proc),
            c.stats_row("pytest process start -> test module import (pytest start-up)", proc_to_import),
            c.stats_row("prev finished_at -> next pytest process start (ours: all before pytest runs)", end_to_proc),
            c.stats_row("prev finished_at -> next test module import (all of the above)", to_import),
            c.stats_row("baseline: bare `python -m pytest`, spawn -> process start", bare_proc),
            c.stats_row("baseline: bare `python -m pytest`, spawn -> test module import", bare_import),
            c.stats_row("baseline: the executor's command by hand, spawn -> module import", exec_import),
        ], title=f"Handover on one environment: a 1 s run then {args.count} trivial runs queued behind it, "
                 f"{args.workers} workers ({load_before} -> {load_after}); {len(handover)} handovers")
        print(f"  {args.count + 1} runs created through the API in {create_s:.2f} s; {late} run(s) were created after "
              f"the run before them had ended (not counted); {len(not_ok)} run(s) did not succeed.")
        for row in not_ok[:5]:
            print(f"    run {row['id']}: {row['state']} {row['error']!r}")
        print(f"  finished_at -> module import (median {c.median(to_import):.1f} ms) = ours up to the pytest process "
              f"(median {c.median(end_to_proc):.1f} ms, p95 {c.ms_stats(end_to_proc)['p95']:.1f}) + pytest's own start-up "
              f"in the run (median {c.median(proc_to_import):.1f} ms;\n  a bare pytest's, measured before and after the "
              f"queue: {c.median(bare_import):.1f} ms, with the executor's flags {c.median(exec_import):.1f} ms).")
        p95 = c.ms_stats(handover)["p95"]
        met = p95 <= args.target_ms and not not_ok
        print("  " + r.pytest_plugins_line())
        print(f"\nratio = handover p95 / bare pytest spawn->import p95 = {p95:.1f} / "
              f"{c.ms_stats(bare_import)['p95']:.1f} = {p95 / c.ms_stats(bare_import)['p95']:.2f}")
        print(f"Target: p95 of finished_at -> started_at <= {args.target_ms:g} ms: {'MET' if met else 'MISSED'} "
              f"(p95 {p95:.1f} ms)")

        c.record("handover p95, exact environment", f"{p95:.1f} ms", f"<= {args.target_ms:g} ms", met)
        pool, wrong = pool_case(s, api, args, one_second, trivial)
        pool_p95 = c.ms_stats(pool)["p95"]
        row = c.stats_row("pool runs: prev finished_at -> next started_at  [target]", pool)
        c.print_table(headers, [row], title=f"The same queue of {args.count} trivial runs, asking for pool {POOL!r} "
                                            f"(carried by environment {args.environment} only); {len(pool)} handovers")
        print(f"  {wrong} pool run(s) did not succeed on environment {args.environment}.")
        print(f"ratio = pool handover p95 / exact-environment handover p95 (above, same stack) = {pool_p95:.1f} / "
              f"{p95:.1f} = {pool_p95 / p95:.2f}")
        print(f"Target (pool runs): p95 <= {args.target_ms:g} ms: "
              f"{'MET' if pool_p95 <= args.target_ms and not wrong else 'MISSED'} (p95 {pool_p95:.1f} ms)")
        c.record("handover p95, pool runs", f"{pool_p95:.1f} ms", f"<= {args.target_ms:g} ms",
                 pool_p95 <= args.target_ms and not wrong)
        api.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
