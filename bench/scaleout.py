"""Scale-out: trivial runs over many environments with 1 and 2 worker processes (more with --widths), on PostgreSQL.

    .venv/bin/python bench/scaleout.py                          # 80 runs over 20 environments, widths 1 2
    .venv/bin/python bench/scaleout.py --count 200 --widths 1 2 4   # and past the CPU count
    .venv/bin/python bench/scaleout.py --count 20 --bare 4      # quick smoke check

Needs PostgreSQL: TEST_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test) names the server; a fresh
database of this script's own (``cutover_scaleout_<pid>_<width>``) is created per width and dropped after. Without
a server it says so and exits 0. Per width, ``bench/throughput.py``'s machinery on the shared stack (redis-server,
gunicorn 1 x 4, ``--width`` x ``python worker.py``): test_trivial.py uploaded, a warm-up block, ``--count`` runs
created through the API (run i on environment i mod ``--environments`` + 1) until all are final; baseline in the same
run: bare = median wall time of ``--bare`` plain ``python -m pytest test_trivial.py`` (bench._runs.Bare) measured
right before and ``--bare`` more right after the block, ideal bound = width x 1 / bare. Target: runs/s / bound >= 0.85 at every width the cores can feed
(a width above the CPU count is reported, not held to it); prints where it stops scaling. Reports only: exits 0.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _common as c  # noqa: E402
from bench import _runs as r  # noqa: E402
from bench.throughput import run_block  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=80)
    p.add_argument("--environments", type=int, default=20)
    p.add_argument("--widths", type=int, nargs="+", default=[1, 2])
    p.add_argument("--bare", type=int, default=6, help="bare pytests per width for the baseline (default 6)")
    p.add_argument("--target", type=float, default=0.85)
    p.add_argument("--timeout", type=float, default=900.0)
    return p.parse_args()


class PgRunStack(r.RunStack):
    """``RunStack`` whose reads go to PostgreSQL (``?`` marks become ``%s``)."""

    def query(self, sql: str, params=()) -> list:
        import psycopg

        with psycopg.connect(self.settings.extra["DATABASE_URL"]) as con:
            return con.execute(sql.replace("?", "%s"), list(params)).fetchall()


def server(url: str):
    import psycopg

    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        return exc


def width_run(args, url: str, width: int) -> dict:
    with c.stack(f"cutover-bench-scaleout-{width}-", workers=width, threads=4, cls=PgRunStack,
                 DATABASE_URL=url) as s:
        api = s.api()
        path = api.upload("bench", "test_trivial.py", r.TRIVIAL)
        run_block(s, api, path, 0, 2 * width, args.environments, args.timeout)  # warm-up, not measured
        bare = r.Bare(s.tmp / "bare", {"test_trivial.py": r.TRIVIAL})
        bare.run("test_trivial.py")
        before = [bare.run("test_trivial.py")["wall"] for _ in range(args.bare)]
        block = run_block(s, api, path, 2 * width, args.count, args.environments, args.timeout)
        after = [bare.run("test_trivial.py")["wall"] for _ in range(args.bare)]  # the baseline brackets the block:
        bare_s = c.median(before + after)  # load that comes or goes meanwhile weighs on both sides alike
        api.close()
    rate, bound = args.count / block["elapsed"], width / bare_s
    return {"width": width, "bare_s": bare_s, "rate": rate, "bound": bound, "ratio": rate / bound,
            "elapsed": block["elapsed"], "not_ok": len(block["not_ok"])}


def main() -> int:
    args = parse_args()
    base = os.environ.get("TEST_DATABASE_URL") or DEFAULT_URL
    admin = server(base)
    if isinstance(admin, Exception):
        print(f"SKIPPED: no PostgreSQL at {base} ({type(admin).__name__}: {admin}); set TEST_DATABASE_URL")
        return 0
    parts = urlsplit(base)
    results = []
    try:
        for width in args.widths:
            name = f"cutover_scaleout_{os.getpid()}_{width}"
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            admin.execute(f'CREATE DATABASE "{name}"')
            try:
                results.append(width_run(args, urlunsplit(parts._replace(path=f"/{name}")), width))
            finally:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            x = results[-1]
            print(f"width {width}: {x['rate']:.2f} runs/s, bound {x['bound']:.2f}, ratio {x['ratio']:.2f}", flush=True)
    finally:
        admin.close()
    cpus = os.cpu_count() or 1
    c.print_table(["workers", "runs", "seconds", "runs/s", "bare ms (baseline)", "bound runs/s", "ratio", "not ok"],
                  [[x["width"], args.count, f"{x['elapsed']:.2f}", f"{x['rate']:.2f}", f"{x['bare_s'] * 1000:.0f}",
                    f"{x['bound']:.2f}", f"{x['ratio']:.2f}", x["not_ok"]] for x in results],
                  title=f"Scale-out on PostgreSQL: {args.count} trivial runs over {args.environments} environments "
                        f"({c.load_line()})")
    fed = [x for x in results if x["width"] <= cpus]
    stops = next((x["width"] for x in results if x["ratio"] < args.target), None)
    best = max(results, key=lambda x: x["rate"])
    print(f"\nbest: {best['rate']:.2f} runs/s at {best['width']} worker(s); "
          + (f"stops scaling at {stops} worker(s) (ratio < {args.target:g})" if stops else
             f"scales to every width measured (ratio >= {args.target:g})"))
    met = bool(fed) and all(x["ratio"] >= args.target and not x["not_ok"] for x in fed)
    print(f"Target: ratio >= {args.target:g} at every width up to the {cpus} CPUs "
          f"({', '.join(str(x['width']) for x in fed)}): {'MET' if met else 'MISSED'}")
    c.record("scale-out on PostgreSQL, worst ratio up to the CPUs",
             f"{min((x['ratio'] for x in fed), default=float('nan')):.2f}", f">= {args.target:g}", met)
    return 0


if __name__ == "__main__":
    sys.exit(main())
