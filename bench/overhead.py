"""Overhead: a one-test run end to end through the app, against the same file under a bare ``python -m pytest``.

    .venv/bin/python bench/overhead.py                 # 20 interleaved pairs, 2 workers
    .venv/bin/python bench/overhead.py --count 4       # quick smoke check

A private redis-server, a temporary DATA_DIR (SQLite), ``gunicorn --workers 1 --threads 4 wsgi:app`` and
``--workers`` × ``python worker.py`` are started; test_trivial.py (one passing test; it also stamps its import time
into ./started.txt) is uploaded through the API.

* Measured: ``POST /api/v1/runs`` (HTTP, keep-alive) -> ``GET /api/v1/runs/<id>`` every ``--poll-ms`` (5 ms) until
  the state is final: wall time from just before the POST to the response that shows the final state.
* Baseline: ``python -m pytest test_trivial.py`` from the same interpreter in a scratch directory (with a
  ``[pytest]`` pytest.ini, as the executor gives each run): subprocess wall time. With PYTEST_DISABLE_PLUGIN_AUTOLOAD=1,
  as the executor runs pytest: the plugins installed in the venv for the app's own tests cost most of a second per
  start that no run pays (the literal command with them is measured too, as a diagnostic).

``--count`` pairs, interleaved (run then bare, bare then run, ...) so that load elsewhere on the machine weighs on
both alike; each pair gives a ratio run / bare and the figure is their median. A third, diagnostic command is
measured in every pair too: the executor's exact pytest command (flags, scrubbed environment, rlimits, sandbox) by
hand, so that what pytest's flags cost is told apart from what the app adds, and the same with SANDBOX=off, so that
the sandbox's own cost per run (unshare's namespaces, Landlock, capabilities) is measured in the same pairs; and a fourth: the same run through the app
whose final state is read from the SQLite file every 5 ms instead of through the API, to tell what serving the
client's polls costs (``--literal`` adds the literal ``python -m pytest`` with the venv's plugins autoloaded). Target: median ratio <= 1.10.
Reports only: exits 0 either way.
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
    p.add_argument("--count", type=int, default=20, help="interleaved pairs (default 20; at least 10 for the target)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--warmup", type=int, default=2, help="unmeasured pairs first (default 2)")
    p.add_argument("--poll-ms", type=float, default=5.0, help="API polling interval (default 5 ms)")
    p.add_argument("--target", type=float, default=1.10, help="target median ratio run / bare (default 1.10)")
    p.add_argument("--timeout", type=float, default=120.0, help="give up on one run after this many seconds")
    p.add_argument("--sandbox", default="auto", choices=("auto", "strict", "off"),
                   help="the workers' SANDBOX setting (default auto: what this kernel offers)")
    p.add_argument("--literal", action="store_true",
                   help="also time the literal `python -m pytest` with the venv's pytest plugins autoloaded")
    return p.parse_args()


def one_run(api: c.Client, path: str, environment_id: int, poll: float, timeout: float, stack: r.RunStack | None = None
            ) -> dict:
    """Create a run and poll it until final; wall time from before the POST to the response showing it final.
    With ``stack``: poll the database file directly instead of the API (diagnostic: no HTTP polling load)."""
    start = time.time()
    t0 = time.perf_counter()
    run = api.create_run(environment_id, [path])
    created = time.perf_counter() - t0
    polls = 0
    while run["state"] not in r.FINAL:
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError(f"run {run['id']} still {run['state']} after {timeout:.0f} s")
        time.sleep(poll)
        if stack is not None:
            run = {**run, "state": stack.state(run["id"])}
        else:
            run = api.get(f"/api/v1/runs/{run['id']}")
        polls += 1
    wall = time.perf_counter() - t0
    return {"wall": wall, "id": run["id"], "state": run["state"], "start": start, "observed": start + wall,
            "create": created, "polls": polls, "sandbox": run.get("sandbox") or {}}


def main() -> int:
    args = parse_args()
    with r.stack("cutover-bench-overhead-", workers=args.workers, SANDBOX=args.sandbox) as s:
        api = s.api()
        path = api.upload("bench", "test_trivial.py", r.TRIVIAL)
        bare = r.Bare(s.tmp / "bare", {"test_trivial.py": r.TRIVIAL})
        poll = args.poll_ms / 1000
        runs, bares, execs, unconfined, literal, quiet = [], [], [], [], [], []
        app_procs = [s.gunicorn, *s.workers]
        load_before = c.load_line()

        marks = []  # (app CPU so far, the run measured next or None), at the start of every step

        def measured_run(environment_id: int, into: list, stack: r.RunStack | None = None) -> None:
            run = one_run(api, path, environment_id, poll, args.timeout, stack=stack)
            into.append(run)
            marks[-1] = (marks[-1][0], run)

        for i in range(args.warmup + args.count):
            environment_id = i % 100 + 1
            steps = [lambda: measured_run(environment_id, runs),
                     lambda: bares.append(bare.run("test_trivial.py")),
                     lambda: execs.append(bare.run("test_trivial.py", "executor")),
                     lambda: unconfined.append(bare.run("test_trivial.py", "unconfined")),
                     lambda: measured_run(environment_id, quiet, stack=s)]
            if args.literal:
                steps.append(lambda: literal.append(bare.run("test_trivial.py", "autoload")))
            # rotate the order pair by pair: each command goes first, second, ... and last alike
            k = i % len(steps)
            for step in steps[k:] + steps[:k]:
                marks.append((r.tree_cpu(app_procs), None))
                step()
            if i < args.warmup:
                bares.pop(), execs.pop(), unconfined.pop(), quiet.pop()
                if args.literal:
                    literal.pop()
        time.sleep(0.5)  # the last run's worker is done
        marks.append((r.tree_cpu(app_procs), None))
        for (cpu0, run), (cpu1, _) in zip(marks, marks[1:]):
            if run is not None:  # the app's CPU from this run's POST to the start of the next step
                run["app_cpu"] = cpu1 - cpu0
        del runs[:args.warmup]
        load_after = c.load_line(cpus=False)

        ratios = [run["wall"] / b["wall"] for run, b in zip(runs, bares)]
        ratio = c.median(ratios)
        run_ms = [x["wall"] * 1000 for x in runs]
        bare_ms = [x["wall"] * 1000 for x in bares]
        exec_ms = [x["wall"] * 1000 for x in execs]
        unconfined_ms = [x["wall"] * 1000 for x in unconfined]
        not_ok = [x for x in runs if x["state"] != "success"]
        c.print_table(["end to end (ms)", "n", "p50", "p95", "max", "median / bare"], [
            c.stats_row("bare `python -m pytest test_trivial.py` (baseline)", bare_ms, ["1.00"]),
            c.stats_row("the executor's pytest command by hand, sandboxed (diagnostic)", exec_ms,
                        [f"{c.median(e / b for e, b in zip(exec_ms, bare_ms)):.2f}"]),
            c.stats_row("  the same, SANDBOX=off (diagnostic)", unconfined_ms,
                        [f"{c.median(e / b for e, b in zip(unconfined_ms, bare_ms)):.2f}"]),
            *([c.stats_row("literal `python -m pytest`, venv plugins autoloaded (diagnostic)",
                           [x["wall"] * 1000 for x in literal],
                           [f"{c.median(x['wall'] / b['wall'] for x, b in zip(literal, bares)):.2f}"])]
              if literal else []),
            c.stats_row(f"a run, its state read from the DB file every {args.poll_ms:g} ms (diagnostic: no HTTP polls)",
                        [x["wall"] * 1000 for x in quiet],
                        [f"{c.median(x['wall'] / b['wall'] for x, b in zip(quiet, bares)):.2f}"]),
            c.stats_row(f"a run: POST /api/v1/runs -> final state seen (poll {args.poll_ms:g} ms)", run_ms,
                        [f"{ratio:.2f}"]),
        ], title=f"One-test run through the app vs bare pytest, {args.count} interleaved pairs, {args.workers} "
                 f"workers ({load_before} -> {load_after})")

        # Where a run's time goes: the stored times and the test module's own import stamp.
        rows = s.rows([x["id"] for x in runs])
        phases = {k: [] for k in ("post", "create", "dispatch", "claim", "spawn", "pytest", "exit", "seen")}
        for x in runs:
            row = rows[x["id"]]
            imported, proc_start = s.stamp(x["id"])
            phases["post"].append(x["create"] * 1000)
            phases["create"].append((row["created_at"] - x["start"]) * 1000)
            phases["dispatch"].append((row["dispatched_at"] - row["created_at"]) * 1000)
            phases["claim"].append((row["started_at"] - row["dispatched_at"]) * 1000)
            phases["spawn"].append((proc_start - row["started_at"]) * 1000)
            phases["pytest"].append((row["finished_at"] - proc_start) * 1000)
            phases["seen"].append((x["observed"] - row["finished_at"]) * 1000)
            phases["exit"].append((row["finished_at"] - s.ended(x["id"])[0]) * 1000)
        # pytest's CPU after its end stamp (summary, interpreter shutdown) is charged to the worker that reaps it: take the
        # bare runs' median of it off the app's share.
        shutdown_cpu = c.median(b["cpu_after_atexit"] for b in bares)
        pytest_cpu, app_cpu, pytest_wall = [], [], []
        for x in runs:
            ended, cpu = s.ended(x["id"])
            _, proc_start = s.stamp(x["id"])
            pytest_cpu.append(cpu * 1000)
            pytest_wall.append((ended - proc_start) * 1000)
            app_cpu.append((x["app_cpu"] - cpu - shutdown_cpu) * 1000)
        quiet_wall, quiet_cpu, quiet_app = [], [], []
        for x in quiet:
            ended, cpu = s.ended(x["id"])
            quiet_wall.append((ended - s.stamp(x["id"])[1]) * 1000)
            quiet_cpu.append(cpu * 1000)
            quiet_app.append((x["app_cpu"] - cpu - shutdown_cpu) * 1000)
        bare_spawn = [b["to_proc"] * 1000 for b in bares]
        bare_rest = [(b["wall"] - b["to_proc"]) * 1000 for b in bares]
        exec_rest = [(b["wall"] - b["to_proc"]) * 1000 for b in execs]
        c.print_table(["phase of a run (ms)", "n", "p50", "p95", "max"], [
            c.stats_row("the POST request, client side (create + dispatch + enqueue)", phases["post"]),
            c.stats_row("  POST sent -> created_at", phases["create"]),
            c.stats_row("  created_at -> dispatched_at", phases["dispatch"]),
            c.stats_row("dispatched_at -> started_at (RQ enqueue/dequeue, fork, claim)", phases["claim"]),
            c.stats_row("started_at -> pytest process start (run dir, Popen; /proc 10 ms ticks)", phases["spawn"]),
            c.stats_row("pytest process start -> finished_at (pytest, log drain, junit)", phases["pytest"]),
            c.stats_row("  of which pytest end stamp -> finished_at (interpreter exit, log drain, junit)", phases["exit"]),
            c.stats_row("finished_at -> final state seen by the client (polling)", phases["seen"]),
            c.stats_row("bare: spawn -> process start", bare_spawn),
            c.stats_row("bare: process start -> exit", bare_rest),
            c.stats_row("  of which pytest end stamp -> subprocess returned (interpreter exit)",
                        [(b["spawn"] + b["wall"] - b["ended"]) * 1000 for b in bares]),
            c.stats_row("executor's command by hand: process start -> exit", exec_rest),
        ], title="Where the time goes (a run's stored times; pytest process start from the module's /proc stamp)")
        c.print_table(["pytest process: wall and CPU (ms)", "n", "p50", "p95", "max"], [
            c.stats_row("in a run: process start -> exit (wall)", pytest_wall),
            c.stats_row("bare: process start -> exit (wall)", [(b["ended"] - b["proc_start"]) * 1000 for b in bares]),
            c.stats_row("executor's command by hand: process start -> exit (wall)",
                        [(b["ended"] - b["proc_start"]) * 1000 for b in execs]),
            c.stats_row("in a run: pytest CPU (user + system) up to its end stamp", pytest_cpu),
            c.stats_row("bare: pytest CPU up to its end stamp", [b["cpu"] * 1000 for b in bares]),
            c.stats_row("bare: pytest CPU after its end stamp (summary, interpreter shutdown)",
                        [b["cpu_after_atexit"] * 1000 for b in bares]),
            c.stats_row("executor's command by hand: pytest CPU up to its end stamp", [b["cpu"] * 1000 for b in execs]),
            *([c.stats_row("literal `python -m pytest`, plugins autoloaded: pytest CPU",
                           [b["cpu"] * 1000 for b in literal])] if literal else []),
            c.stats_row("a run without HTTP polling: process start -> exit (wall)", quiet_wall),
            c.stats_row("a run without HTTP polling: pytest CPU up to its end stamp", quiet_cpu),
            c.stats_row("app CPU per run besides pytest (gunicorn + workers), HTTP-polled runs", app_cpu),
            c.stats_row("app CPU per run besides pytest, runs without HTTP polling", quiet_app),
        ], title=f"CPU: pytest's own, and what the app burns around it ({os.cpu_count()} CPUs; the client's "
                 f"polling is served by gunicorn; app CPU = gunicorn + workers + their children - the run's pytest up to "
                 f"its end stamp - the bare median after it)")
        print(f"  polls per run: median {c.median(x['polls'] for x in runs):.0f}; {len(not_ok)} run(s) did not succeed")
        cost = c.median(e - u for e, u in zip(exec_ms, unconfined_ms))
        print(f"  sandbox: runs {runs[0].get('sandbox', {}).get('mode') if runs else '?'} (workers' SANDBOX="
              f"{args.sandbox}); its cost per run, by hand = median(sandboxed - SANDBOX=off) = {cost:.1f} ms "
              f"({c.median(e / u for e, u in zip(exec_ms, unconfined_ms)):.3f}x)")
        met = ratio <= args.target and not not_ok and args.count >= 10
        print("  " + r.pytest_plugins_line())
        print(f"\nratio = median over pairs of run / bare = {ratio:.3f} (ratio of medians "
              f"{c.median(run_ms) / c.median(bare_ms):.3f}; range {min(ratios):.2f}-{max(ratios):.2f})")
        print(f"Target: ratio <= {args.target:g}: {'MET' if met else 'MISSED'}"
              + ("" if args.count >= 10 else f" (only {args.count} pairs: at least 10 are needed)"))
        c.record("run end to end / bare pytest (median of pairs)", f"{ratio:.3f}", f"<= {args.target:g}", met)
        api.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
