"""Recovery: how fast a test run whose worker died ends ``error`` "worker lost" and its environment goes on.

    .venv/bin/python bench/recovery.py                       # 4 kills with the defaults, 1 with the old ones
    .venv/bin/python bench/recovery.py --kills 20 --baseline-kills 3   # a firmer p95 (about 8 minutes)
    .venv/bin/python bench/recovery.py --kills 3 --baseline-kills 0   # quick smoke check

A private redis-server, a temporary DATA_DIR (SQLite), gunicorn and ``--workers`` × ``python worker.py``
(``bench._common.stack``). Through the API: a test file that sleeps 120 s silently, and a trivial one. For each
kill, on an environment of its own: a run of the silent test and, queued right behind it, a run of the trivial
test. Once the silent run's pytest is running, after a random 0..ttl/3 s (so that the kill falls anywhere in the
watchdog's renewal cycle), the worker holding it is killed as a host dies: SIGKILL to its whole process group and
to every descendant (pytest runs in a session of its own). Measured from the kill (``time.time()``, the same
clock as the database's timestamps):

* kill -> the lost run's ``finished_at`` (state ``error``, error "worker lost"). Target: p95 <= 15 s.
* kill -> the next run's ``started_at`` on that environment (a surviving worker took it).

A replacement worker is started after each kill, once the next run has started (so its start-up does not load
the measurement), and waited for before the next kill.

Then ``--migration-kills`` times, on the same stack (MIGRATION_DURATION_SECONDS=300, so the copy is still going):
a workload and a migration through the API, Run, and once a worker's RQ registration names the migration's job
and its progress moved, the same kill; measured: kill -> the migration's ``finished_at`` (state ``error``,
"worker lost"). Target: p95 <= 15 s too.

Baseline, same run, same measurement on a second stack whose workers get the old defaults
(ENV_LOCK_TTL_SECONDS=30 MAINTENANCE_INTERVAL_SECONDS=5 MIGRATION_STALE_SECONDS=30), ``--baseline-kills`` and
``--baseline-migration-kills`` times.
Reports only: exits 0 either way.
"""
from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import _common as c  # noqa: E402
from bench import _runs as r  # noqa: E402

SILENT = '''import time


def test_silent():
    time.sleep(120)
'''
OLD_DEFAULTS = {"ENV_LOCK_TTL_SECONDS": 30, "MAINTENANCE_INTERVAL_SECONDS": 5, "MIGRATION_STALE_SECONDS": 30}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kills", type=int, default=4, help="kills with the default settings (default 4)")
    p.add_argument("--baseline-kills", type=int, default=1, help="kills with the old defaults (default 1)")
    p.add_argument("--migration-kills", type=int, default=2, help="migration kills, defaults (default 2)")
    p.add_argument("--baseline-migration-kills", type=int, default=1, help="migration kills, old defaults (default 1)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--target-s", type=float, default=15.0, help="p95 target of kill -> error (default 15)")
    p.add_argument("--timeout", type=float, default=120.0, help="give up waiting after this many seconds")
    p.add_argument("--seed", type=int, default=10, help="seed of the random kill delays")
    return p.parse_args()


def tree(pid: int) -> list:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def holder_of_pytest(workers: list):
    """The worker process that has a pytest below it, if any."""
    for proc in workers:
        if any("pytest" in " ".join(p.cmdline()) for p in tree(proc.pid) if p.is_running()):
            return proc
    return None


def kill_host(proc) -> float:
    """SIGKILL the worker's process group and every descendant at once; returns the kill's time.time()."""
    descendants = tree(proc.pid)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    killed_at = time.time()
    for child in descendants:
        try:
            child.kill()
        except Exception:
            pass
    proc.wait()
    return killed_at


def holder_of_job(s, job_id: str):
    """The worker process whose RQ registration says it is running ``job_id``."""
    from rq import Worker

    pids = {w.pid for w in Worker.all(connection=s.redis) if w.get_current_job_id() == job_id}
    return next((p for p in s.workers if p.pid in pids), None)


def kill_migrations(s, label: str, kills: int, args, rng: random.Random, out: dict) -> None:
    api = s.api()
    for i in range(kills):
        workload = api.json("POST", "/api/v1/workloads", {
            "ip": f"10.99.{i // 250}.{i % 250 + 1}", "credentials": {"username": "admin", "password": "s3cret!",
                                                                      "domain": "CORP"},
            "storage": [{"name": "C:\\", "size": 40}, {"name": "D:\\", "size": 100}]}, expect=201)
        migration = api.json("POST", "/api/v1/migrations", {
            "source_id": workload["id"], "selected_mount_points": ["C:\\"],
            "target": {"cloud_type": "aws", "cloud_credentials": {"username": "cloud", "password": "cl0ud!"}}},
            expect=201)
        mid = migration["id"]
        api.json("POST", f"/api/v1/migrations/{mid}/run", {}, expect=202)

        def copying():
            found = s.query("SELECT job_id, started_at FROM migrations WHERE id = ?", (mid,))
            return found and found[0][1] and holder_of_job(s, found[0][0])

        holder = c.wait_until(copying, args.timeout, 0.05, message="the migration's copy", alive=s.procs)
        time.sleep(rng.uniform(0, 1.0))
        killed_at = kill_host(holder)
        s.workers.remove(holder)
        row = c.wait_until(lambda: next(iter(s.query("SELECT state, error, finished_at FROM migrations WHERE id = ? "
                                                     "AND finished_at IS NOT NULL", (mid,))), None),
                           args.timeout, 0.05, message="the lost migration to end", alive=s.procs)
        if (row[0], row[1]) != ("error", "worker lost"):
            out["bad"].append(f"migration {mid}: {row[0]} {row[1]!r}")
        out["migration"].append(c.epoch(row[2]) - killed_at)
        print(f"  {label} migration kill {i + 1}/{kills}: -> error {out['migration'][-1]:.2f} s", flush=True)
        s.workers += c.start_workers(s.settings, 1, s.tmp, name=f"worker-migration-{i}")
    api.close()


def measure(label: str, kills: int, migration_kills: int, args, rng: random.Random, **settings) -> dict:
    """``kills`` run kills and ``migration_kills`` migration kills on one stack;
    {"lost": [s], "next": [s], "migration": [s], "bad": [str]}."""
    out = {"lost": [], "next": [], "migration": [], "bad": []}
    if kills <= 0 and migration_kills <= 0:
        return out
    with r.stack(f"cutover-bench-recovery-{label}-", workers=args.workers, MIGRATION_DURATION_SECONDS=300,
                 **settings) as s:
        ttl = float(settings.get("ENV_LOCK_TTL_SECONDS", s.app.config["ENV_LOCK_TTL_SECONDS"]))
        api = s.api()
        silent = api.upload("bench", "test_silent.py", SILENT)
        trivial = api.upload("bench", "test_trivial.py", r.TRIVIAL)
        s.wait_final([api.create_run(100 - i, [trivial])["id"] for i in range(args.workers)], args.timeout)  # warm-up
        for i in range(kills):
            environment = i + 1
            doomed_run = api.create_run(environment, [silent])["id"]
            next_run = api.create_run(environment, [trivial])["id"]
            holder = c.wait_until(lambda: holder_of_pytest(s.workers), args.timeout, 0.05,
                                  message="the silent run's pytest", alive=s.procs)
            time.sleep(rng.uniform(0, ttl / 3))
            killed_at = kill_host(holder)
            s.workers.remove(holder)
            c.wait_until(lambda: s.rows([doomed_run])[doomed_run]["finished_at"]
                         and s.rows([next_run])[next_run]["started_at"], args.timeout, 0.05,
                         message="the lost run to end and the next one to start", alive=s.procs)
            rows = s.rows([doomed_run, next_run])
            lost, nxt = rows[doomed_run], rows[next_run]
            if (lost["state"], lost["error"]) != ("error", "worker lost"):
                out["bad"].append(f"run {doomed_run}: {lost['state']} {lost['error']!r}")
            out["lost"].append(lost["finished_at"] - killed_at)
            out["next"].append(nxt["started_at"] - killed_at)
            print(f"  {label} kill {i + 1}/{kills}: -> error {out['lost'][-1]:.2f} s, -> next run started "
                  f"{out['next'][-1]:.2f} s", flush=True)
            s.workers += c.start_workers(s.settings, 1, s.tmp, name=f"worker-replacement-{i}")
            s.wait_final([next_run], args.timeout)
        api.close()
        kill_migrations(s, label, migration_kills, args, rng, out)
    return out


def main() -> int:
    args = parse_args()
    rng = random.Random(args.seed)
    load_before = c.load_line()
    new = measure("defaults", args.kills, args.migration_kills, args, rng)
    old = measure("old", args.baseline_kills, args.baseline_migration_kills, args, rng, **OLD_DEFAULTS)
    load_after = c.load_line(cpus=False)
    headers = ["interval (s)", "n", "p50", "p95", "max"]
    c.print_table(headers, [
        c.stats_row("defaults (TTL 10, maintenance 2 s): kill -> run error \"worker lost\"  [target]", new["lost"]),
        c.stats_row("defaults: kill -> next run on that environment started", new["next"]),
        c.stats_row("baseline, old defaults (TTL 30, maintenance 5 s): kill -> run error", old["lost"]),
        c.stats_row("baseline, old defaults: kill -> next run started", old["next"]),
        c.stats_row("defaults (stale after 10 s): kill -> migration error \"worker lost\"  [target]", new["migration"]),
        c.stats_row("baseline, old defaults (stale after 30 s): kill -> migration error", old["migration"]),
    ], title=f"Recovery after SIGKILL of a worker's process group mid-run, {args.workers} workers "
             f"({load_before} -> {load_after})")
    for line in new["bad"] + old["bad"]:
        print(f"  not lost as expected: {line}")
    p95 = c.ms_stats(new["lost"])["p95"]
    old_p95 = c.ms_stats(old["lost"])["p95"]
    if old["lost"]:
        print(f"\nratio = kill -> error p95, defaults / old defaults = {p95:.2f} / {old_p95:.2f} = {p95 / old_p95:.2f}")
    if old["migration"]:
        m_p95, m_old = c.ms_stats(new["migration"])["p95"], c.ms_stats(old["migration"])["p95"]
        print(f"ratio = migration kill -> error p95, defaults / old defaults = {m_p95:.2f} / {m_old:.2f} = "
              f"{m_p95 / m_old:.2f}")
    met = p95 <= args.target_s and not new["bad"] and len(new["lost"]) == args.kills
    print(f"Target: p95 of kill -> run error \"worker lost\" <= {args.target_s:g} s: {'MET' if met else 'MISSED'} "
          f"(p95 {p95:.2f} s, next run started p95 {c.ms_stats(new['next'])['p95']:.2f} s)")
    c.record("killed worker -> run error, p95", f"{p95:.2f} s", f"<= {args.target_s:g} s", met)
    if args.migration_kills > 0:
        m_p95 = c.ms_stats(new["migration"])["p95"]
        m_met = m_p95 <= args.target_s and len(new["migration"]) == args.migration_kills
        print(f"Target: p95 of kill -> migration error \"worker lost\" <= {args.target_s:g} s: "
              f"{'MET' if m_met else 'MISSED'} (p95 {m_p95:.2f} s)")
        c.record("killed worker -> migration error, p95", f"{m_p95:.2f} s", f"<= {args.target_s:g} s", m_met)
    return 0


if __name__ == "__main__":
    sys.exit(main())
