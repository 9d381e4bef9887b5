"""Bulk import: how long ``POST /api/v1/workloads/import`` takes for 1 000 rows, through real HTTP (gunicorn).

    .venv/bin/python bench/import.py                  # 1 000 rows, 3 rounds of each kind
    .venv/bin/python bench/import.py --rows 200 --rounds 1   # quick smoke check

A private redis-server, a temporary DATA_DIR (SQLite) and ``gunicorn --workers 1 --threads 4 wsgi:app`` are
started (no worker: an import queues nothing). Each round, on fresh IP addresses, with the admin's API token:

* CSV: one ``text/csv`` body of ``--rows`` lines (``ip,username,password,domain,volumes``, two volumes each).
* JSON: the same rows as one ``application/json`` list of workload inputs.
* Baseline, same server, same run: ``--rows`` single ``POST /api/v1/workloads`` creates one after another on one
  keep-alive connection (what a script without the import does).

Every import is checked afterwards (the count of rows in the database grew by ``--rows``). The figure is the median
time of the CSV import (request sent → 201 read); the ratio is that over the baseline's total. Also shown: the
in-process split of one import (parse + checks, vault encryption, the transaction), to say where the time goes.
Target: 1 000 rows in under 5 s. Reports only: exits 0 either way.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import _common as c  # noqa: E402

HEADER = "ip,username,password,domain,volumes"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1000, help="rows per import (default 1000)")
    p.add_argument("--rounds", type=int, default=3, help="imports of each kind, and baselines (default 3)")
    p.add_argument("--target-s", type=float, default=5.0, help="target for --rows rows, in seconds (default 5)")
    return p.parse_args()


def ip(block: int, n: int) -> str:
    return f"10.{block}.{n // 250}.{n % 250 + 1}"


def csv_text(block: int, rows: int) -> bytes:
    lines = [f"{ip(block, n)},user{n},pw-{n}-{block}-x9,CORP,C:\\:40;D:\\:{n % 500 + 1}" for n in range(rows)]
    return ("\r\n".join([HEADER, *lines]) + "\r\n").encode()


def json_items(block: int, rows: int) -> list[dict]:
    return [{"ip": ip(block, n), "credentials": {"username": f"user{n}", "password": f"pw-{n}-{block}-x9",
                                                 "domain": "CORP"},
             "storage": [{"name": "C:\\", "size": 40}, {"name": "D:\\", "size": n % 500 + 1}]} for n in range(rows)]


def count(s: c.Stack) -> int:
    return s.query("SELECT count(*) FROM workloads")[0][0]


def timed_import(s: c.Stack, client: c.Client, body: bytes, content_type: str, rows: int) -> float:
    before = count(s)
    status, data = client.request("POST", "/api/v1/workloads/import", body, {"Content-Type": content_type})
    if status != 201 or json.loads(data) != {"created": rows}:
        raise RuntimeError(f"import: {status} {data[:500]!r}")
    if count(s) != before + rows:
        raise RuntimeError(f"import: {count(s) - before} rows stored, not {rows}")
    return client.elapsed


def singles(s: c.Stack, client: c.Client, block: int, rows: int) -> float:
    before, started = count(s), time.perf_counter()
    for item in json_items(block, rows):
        client.json("POST", "/api/v1/workloads", item, expect=201)
    elapsed = time.perf_counter() - started
    if count(s) != before + rows:
        raise RuntimeError("single creates: rows missing")
    return elapsed


def in_process_split(s: c.Stack, rows: int) -> dict:
    """One import's parts, in this process on the same database (rolled back): where the time goes."""
    from webapp.extensions import db, vault
    from webapp.inputs import imports
    from webapp.workloads import services

    data = csv_text(250, rows)
    with s.app.test_request_context():
        t0 = time.perf_counter()
        batch = services.check_import(imports.csv_rows(data))
        t1 = time.perf_counter()
        for w in batch.workloads:
            vault.encrypt(w.credentials.password)
        t2 = time.perf_counter()
        db.session.rollback()
    return {"parse + checks (1 query)": t1 - t0, "vault encryption": t2 - t1}


def main() -> None:
    args = parse_args()
    print(f"bench/import.py: {args.rows} rows, {args.rounds} rounds; {c.load_line()}")
    with c.stack("cutover-bench-import-", workers=0) as s:
        client = s.api()
        block = 0
        results: dict[str, list[float]] = {"CSV (text/csv)": [], "JSON list": [], "baseline": []}
        for _ in range(args.rounds):
            block += 1
            results["CSV (text/csv)"].append(timed_import(s, client, csv_text(block, args.rows), "text/csv",
                                                          args.rows))
            block += 1
            results["JSON list"].append(timed_import(s, client, json.dumps(json_items(block, args.rows)).encode(),
                                                     "application/json", args.rows))
            block += 1
            results["baseline"].append(singles(s, client, block, args.rows))
        split = in_process_split(s, args.rows)
        client.close()
    rows = [(label, f"{min(v):.3f}", f"{statistics.median(v):.3f}", f"{max(v):.3f}",
             f"{args.rows / statistics.median(v):.0f}") for label, v in results.items()]
    c.print_table(["kind", "min s", "median s", "max s", "rows/s"], rows,
                  title=f"{args.rows} rows per import (baseline: {args.rows} single POST /api/v1/workloads)")
    for part, seconds in split.items():
        print(f"  in process, {part}: {seconds:.3f} s")
    figure, baseline = statistics.median(results["CSV (text/csv)"]), statistics.median(results["baseline"])
    target = args.target_s * args.rows / 1000
    print(f"\nFIGURE: CSV import of {args.rows} rows: {figure:.3f} s (median of {args.rounds}); "
          f"baseline {args.rows} single creates: {baseline:.3f} s; ratio {figure / baseline:.2f}x "
          f"({baseline / figure:.1f}x faster)")
    print(f"TARGET {target:.1f} s for {args.rows} rows: {'MET' if figure < target else 'MISSED'}")
    c.record(f"CSV import of {args.rows} rows", f"{figure:.2f} s ({baseline / figure:.1f}x faster than single creates)",
             f"< {target:g} s", figure < target)


if __name__ == "__main__":
    main()
