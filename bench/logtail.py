"""Log tail latency: from a line printed by a running test to the log endpoint serving it.

    .venv/bin/python bench/logtail.py                  # 2 runs of a 5 s test printing every 100 ms
    .venv/bin/python bench/logtail.py --runs 1 --seconds 2    # quick smoke check

A private redis-server, a temporary DATA_DIR (SQLite), ``gunicorn --workers 1 --threads 4 wsgi:app`` and
``--workers`` × ``python worker.py`` are started; test_ticker.py is uploaded through the API. Its one test prints
``tick <i> <time.time()>`` every ``--interval`` (100 ms) for ``--seconds`` (5 s), inside ``capsys.disabled()`` so
that pytest does not hold the output back until the test ends, flushing each line.

* Measured: a run of it is created through the API (HTTP, keep-alive) and a client polls
  ``GET /api/v1/runs/<id>/log?offset=N`` with the ``next_offset`` it was given, one request every ``--poll-ms``
  (10 ms, from request start to request start) until ``complete``. For every tick line: the moment the response
  that first held the whole line was read in full, minus the timestamp printed in it.
* Baselines, same run: the same file under a bare ``python -m pytest -s`` whose stdout pipe is read line by line by
  this process (the floor: pytest, the pipe, no app), and ``GET /ping`` on the same server (the HTTP floor), sampled
  while no run is going.

``--runs`` runs alternate with the bare baselines (bare, run, run, bare, ...). Target: p95 <= 100 ms.
Reports only: exits 0 either way.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import _common as c  # noqa: E402
from bench import _runs as r  # noqa: E402

TICK = re.compile(r"tick (\d+) (\d+\.\d+)")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=2, help="measured runs (default 2)")
    p.add_argument("--seconds", type=float, default=5.0, help="how long the test prints (default 5 s)")
    p.add_argument("--interval", type=float, default=0.1, help="seconds between printed lines (default 0.1)")
    p.add_argument("--poll-ms", type=float, default=10.0, help="log polling interval (default 10 ms)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--target-ms", type=float, default=100.0, help="p95 target (default 100 ms)")
    p.add_argument("--timeout", type=float, default=120.0, help="give up on one run after this many seconds")
    return p.parse_args()


def tail_run(api: c.Client, path: str, environment_id: int, poll: float, timeout: float) -> dict:
    run = api.create_run(environment_id, [path])
    log_path = f"/api/v1/runs/{run['id']}/log?offset="
    offset, buffer, seen = 0, "", {}
    request_ms, polls = [], 0
    t0 = time.perf_counter()
    while True:
        begin = time.perf_counter()
        if begin - t0 > timeout:
            raise TimeoutError(f"run {run['id']}: log not complete after {timeout:.0f} s")
        page = api.get(log_path + str(offset))
        served = time.time()
        request_ms.append((time.perf_counter() - begin) * 1000)
        polls += 1
        if page["text"]:
            buffer += page["text"]
            *lines, buffer = buffer.split("\n")
            for line in lines:
                match = TICK.search(line)
                if match:
                    seen.setdefault(int(match.group(1)), served - float(match.group(2)))
        offset = page["next_offset"]
        if page["complete"]:
            break
        time.sleep(max(0.0, poll - (time.perf_counter() - begin)))
    final = api.get(f"/api/v1/runs/{run['id']}")
    return {"id": run["id"], "state": final["state"], "latency": [v * 1000 for v in seen.values()], "lines": len(seen),
            "request_ms": request_ms, "polls": polls}


def bare_tail(workdir: Path) -> dict:
    """The same test under bare pytest (-s), its stdout read here line by line as it comes."""
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-s", "test_ticker.py"], cwd=workdir,
                            env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},  # as the executor runs it
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    latency = []
    for raw in iter(proc.stdout.readline, b""):
        now = time.time()
        match = TICK.search(raw.decode(errors="replace"))
        if match:
            latency.append((now - float(match.group(2))) * 1000)
    proc.wait()
    return {"latency": latency}


def main() -> int:
    args = parse_args()
    expected = max(1, round(args.seconds / args.interval))
    with r.stack("cutover-bench-logtail-", workers=args.workers) as s:
        api = s.api()
        source = r.ticker(args.seconds, args.interval)
        path = api.upload("bench", "test_ticker.py", source)
        bare = r.Bare(s.tmp / "bare", {"test_ticker.py": source})
        quick = r.ticker(0.2, 0.1)
        warm_path = api.upload("bench", "test_warm_ticker.py", quick)
        tail_run(api, warm_path, 2, args.poll_ms / 1000, args.timeout)  # warm-up, not measured

        runs, bares, pings = [], [], []

        def ping_block(n: int = 50) -> None:
            for _ in range(n):
                t0 = time.perf_counter()
                api.get("/ping")
                pings.append((time.perf_counter() - t0) * 1000)

        load_before = c.load_line()
        c.alternate(args.runs, lambda r: (bares.append(bare_tail(bare.dir)), ping_block()),
                    lambda r: runs.append(tail_run(api, path, 1, args.poll_ms / 1000, args.timeout)))
        load_after = c.load_line(cpus=False)

        latency = [v for x in runs for v in x["latency"]]
        bare_latency = [v for x in bares for v in x["latency"]]
        requests = [v for x in runs for v in x["request_ms"]]
        missing = sum(expected - x["lines"] for x in runs)
        not_ok = [x for x in runs if x["state"] != "success"]
        app = c.ms_stats(latency)
        floor = c.ms_stats(bare_latency)
        c.print_table(["latency (ms)", "n", "p50", "p95", "max", "p95 - bare p95"], [
            c.stats_row("bare pytest -s, stdout pipe read here (baseline)", bare_latency, ["0.0"]),
            c.stats_row("GET /ping on the same server, no run going (HTTP floor)", pings, ["-"]),
            c.stats_row(f"printed -> served by GET .../log (poll every {args.poll_ms:g} ms)", latency,
                        [f"{app['p95'] - floor['p95']:.1f}"]),
            c.stats_row("  one GET .../log request while the run goes (client side)", requests, ["-"]),
        ], title=f"Log tail: {args.runs} run(s) printing a line every {args.interval * 1000:g} ms for "
                 f"{args.seconds:g} s, {args.workers} workers ({load_before} -> {load_after})")
        print(f"  lines seen: {sum(x['lines'] for x in runs)} of {expected * args.runs} ({missing} missing); "
              f"GET .../log requests: {sum(x['polls'] for x in runs)}; {len(not_ok)} run(s) did not succeed")
        met = app["p95"] <= args.target_ms and not not_ok and not missing
        print("  " + r.pytest_plugins_line())
        print(f"\nratio = p95 / bare pipe p95 = {app['p95']:.1f} / {floor['p95']:.2f} ms = {app['p95'] / floor['p95']:.0f}x "
              f"(the pipe floor is near zero: the app's p95 is {app['p95'] - floor['p95']:.1f} ms over it)")
        print(f"Target: p95 <= {args.target_ms:g} ms: {'MET' if met else 'MISSED'} (p95 {app['p95']:.1f} ms)")
        c.record("log line printed -> seen by the tail, p95", f"{app['p95']:.1f} ms", f"<= {args.target_ms:g} ms", met)
        api.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
