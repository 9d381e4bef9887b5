"""GET /metrics: scrape time with 100 000 runs and 100 000 events (SQLite), over HTTP.

    .venv/bin/python bench/metrics.py                       # 100 000 runs, 100 000 events, 60 scrapes
    .venv/bin/python bench/metrics.py --runs 10000 --events 10000 --scrapes 20   # quick smoke check

The shared stack (private redis-server, temporary DATA_DIR on SQLite, ``gunicorn --workers 1 --threads 4``, one
no worker: one would dispatch the seeded queued runs and change the counts mid-run), seeded with ``bench._seed``'s bulk inserts
(runs: 1 000 finished in the last hour, the rest older, 41 active over 20 environments; events: 90 % processed,
5 % failed, 5 % pending). Then ``--scrapes`` GETs of /metrics with the admin's API token (one keep-alive
connection), interleaved one by one with ``GET /ping`` (the baseline: the same HTTP path without the work). Each
scrape's text must parse (prometheus_client's parser) and show the seeded counts. Target: p95 <= 50 ms. Reports
only: exits 0.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _common as c  # noqa: E402
from bench import _seed  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=100_000)
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--scrapes", type=int, default=60, help="timed scrapes (default 60; at least 50 for the target)")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--target-p95-ms", type=float, default=50.0)
    return p.parse_args()


def check(text: str, runs: int, events: int) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    total_runs = sum(v for (n, _), v in samples.items() if n == "cutover_runs")
    total_events = sum(v for (n, _), v in samples.items() if n == "cutover_events")
    if (total_runs, total_events) != (runs, events):
        raise RuntimeError(f"/metrics shows {total_runs} runs and {total_events} events, not {runs} and {events}")


def main() -> int:
    args = parse_args()
    with c.stack("cutover-bench-metrics-", workers=0) as s:
        t0 = time.perf_counter()
        timings = _seed.seed_runs_events(s.app.extensions["db"].kw["bind"], args.runs, args.events)
        s.query("ANALYZE")
        print(f"seeded {args.runs} runs in {timings['runs']:.1f} s, {args.events} events in {timings['events']:.1f} s"
              f" ({time.perf_counter() - t0:.1f} s with ANALYZE)")
        api = s.api()
        metrics, ping = [], []
        size = 0
        try:
            for i in range(args.warmup + args.scrapes):
                for path, into in (("/metrics", metrics), ("/ping", ping)) if i % 2 == 0 else \
                        (("/ping", ping), ("/metrics", metrics)):
                    status, body = api.request("GET", path, headers={"Authorization": f"Bearer {s.token}"})
                    if status != 200:
                        raise RuntimeError(f"GET {path}: {status} {body[:300]!r}")
                    if i >= args.warmup:
                        into.append(api.elapsed * 1000)
                    if path == "/metrics":
                        size = len(body)
                        if i in (0, args.warmup + args.scrapes - 1):
                            check(body.decode(), args.runs, args.events)
        finally:
            api.close()
        m, p = c.ms_stats(metrics), c.ms_stats(ping)
        c.print_table(["request", "n", "p50 ms", "p95 ms", "max ms"],
                      [c.stats_row("GET /metrics", metrics), c.stats_row("GET /ping (baseline)", ping)],
                      title=f"{args.runs} runs, {args.events} events, SQLite; /metrics is {size} bytes; {c.load_line()}")
        print(f"\n/metrics p95: {m['p95']:.1f} ms; /ping p95: {p['p95']:.1f} ms; ratio {m['p95'] / p['p95']:.1f}x")
        met = m["p95"] <= args.target_p95_ms and len(metrics) >= 50
        print(f"Target: /metrics p95 <= {args.target_p95_ms:g} ms over >= 50 scrapes "
              f"({len(metrics)} scrapes): {'MET' if met else 'MISSED'}")
        c.record(f"GET /metrics p95 ({args.runs:,} runs, {args.events:,} events)",
                 f"{m['p95']:.1f} ms ({m['p95'] / p['p95']:.1f}x ping)", f"<= {args.target_p95_ms:g} ms", met)
    return 0


if __name__ == "__main__":
    sys.exit(main())
