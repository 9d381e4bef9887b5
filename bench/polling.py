"""Polling: many signed-in browsers polling the live fragments, through real HTTP (gunicorn as production runs it).

    .venv/bin/python bench/polling.py                            # 50 and 200 clients, 2 s per block (~55 s)
    .venv/bin/python bench/polling.py --clients 50 --seconds 1    # quick smoke check

A private redis-server and a temporary DATA_DIR (SQLite) get, through the app's own models, one workload, one
running migration (two volumes being copied), and one running test run of the admin with a 20 KB log (40 chunks).
gunicorn is started with the checkout's ``gunicorn.conf.py`` (what ``make run`` and ``cutover web`` use: its
workers and threads, ``WEB_CONCURRENCY``/``WEB_THREADS`` or 2 x 8; its access log goes to a file here).

For each ``--clients`` count, every client is one thread with one keep-alive connection, signed in with a session
cookie from the /login form, and asks for one URL as fast as it is answered for ``--seconds``:

* ``GET /ping`` (the baseline of the same run, the same clients: the floor of the HTTP stack);
* the migration status fragment ``GET /migrations/<id>`` with ``HX-Request: true`` (the headline row);
* the run status fragment ``GET /runs/<id>`` with ``HX-Request: true``;
* the log tail fragment ``GET /runs/<id>/log?offset=<end>`` with ``HX-Request: true`` (a tail that has caught up:
  the steady state of a poller every 500 ms).

Each poll also sends ``HX-Current-URL``, the page that polls (the fragment's own page; the run page for the
log tail), as htmx 2 does: the run page's own status poll carries its Sandbox line, out of band.

Each fragment is measured twice: "full", every poll rendered (what the first poll after a change costs), and
"revalidated", the client keeps the ``ETag`` it was given and sends it back in ``If-None-Match`` as a browser's
cache does on its own (when the server sends no ETag both rows are alike: the run status of a running run shows
its duration, new every poll, so it has none). Figures: req/s, p50/p95 ms, errors (a status other than 200/304,
or an exception), the ratio to ``/ping``'s req/s, and the server's CPU ms per request (gunicorn's processes'
CPU time over the requests answered: steadier than wall times when other work loads the machine).

Target, each fragment at 50 clients, as a browser polls it (revalidated; the migration status is the headline):
>= 1000 req/s and p95 <= 50 ms. When it is missed, each fragment is timed and profiled in-process (Flask's test
client, cProfile): ms per request, then the shares of the sign-in check (``auth.guard``: session cookie, Redis
sign-out check, the user's row), the view, its version read (the ETag) and its template render. The Python client
shares the machine's CPUs with the server: so does ``/ping``'s, hence the ratio. Reports only: exits 0 either way.
"""
from __future__ import annotations

import argparse
import cProfile
import re
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import _common as c  # noqa: E402
from bench import _runs as runs  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", default="50,200", help="concurrent clients, comma-separated (default 50,200)")
    p.add_argument("--seconds", type=float, default=2.0, help="seconds per measured block (default 2)")
    p.add_argument("--target-rps", type=float, default=1000.0, help="req/s target at 50 clients (default 1000)")
    p.add_argument("--target-ms", type=float, default=50.0, help="p95 target at 50 clients (default 50 ms)")
    p.add_argument("--explain", action="store_true", help="profile the fragments even when the target is met")
    args = p.parse_args()
    args.clients = [int(n) for n in re.split(r"[,\s]+", args.clients.strip()) if n]
    return args


# --- the world -------------------------------------------------------------------------------------------

def seed(app, username: str) -> dict[str, int]:
    """One workload, one running migration, one running run with a 20 KB log; their ids and the log's end."""
    from webapp.db import utcnow
    from webapp.extensions import db, vault
    from webapp.models import MigrationRow, RunLogChunk, RunRow, WorkloadRow

    with app.app_context():
        now = utcnow()
        workload = WorkloadRow(ip="10.0.0.1", username="administrator", password_enc=vault.encrypt("secret"),
                               domain="CORP", storage=[{"name": "C:\\", "size": 40}, {"name": "D:\\", "size": 100}])
        db.session.add(workload)
        db.session.flush()
        migration = MigrationRow(
            source_id=workload.id, selected=["C:\\", "D:\\"], cloud_type="aws", cloud_username="cloud",
            cloud_password_enc=vault.encrypt("cloud-secret"), state="running", phase="copying", requested_by=username,
            progress=[{"name": "C:\\", "size": 40, "copied": 13.5}, {"name": "D:\\", "size": 100, "copied": 2.0}],
            queued_at=now - timedelta(seconds=30), started_at=now - timedelta(seconds=29), heartbeat_at=now)
        run = RunRow(username=username, environment_id=1, test_files=["uploads/bench/test_a.py"], state="running",
                     started_at=now - timedelta(seconds=20), heartbeat_at=now, sandbox_mode="none")
        db.session.add_all([migration, run])
        db.session.flush()
        line = "tests/test_a.py::test_%04d PASSED" + " " * 20 + "\n"
        offset = 0
        for k in range(40):
            text = "".join(line % (k * 10 + i) for i in range(10))
            db.session.add(RunLogChunk(run_id=run.id, start=offset, end=offset + len(text), text=text))
            offset += len(text)
        run.log_size = offset
        db.session.commit()
        return {"migration": migration.id, "run": run.id, "log_end": offset}


def gunicorn_shape() -> tuple[int, int]:
    """(workers, threads) of the checkout's gunicorn.conf.py, read as gunicorn reads it."""
    namespace: dict = {}
    exec(compile((ROOT / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), namespace)
    return int(namespace["workers"]), int(namespace["threads"])


def browser_cookie(port: int, settings: c.Settings) -> str:
    """The session cookie of a browser that signed in and then opened a page, as a person does before a page
    polls: that page's form made the session's CSRF secret (a Set-Cookie the browser keeps)."""
    cookie = c.web_session(port, settings)
    client = c.Client(port, cookie=cookie, accept="*/*")
    try:
        client.request("GET", "/migrations/")
        return kept(cookie, client.response)
    finally:
        client.close()


def kept(cookie: str, response) -> str:
    """``cookie`` with what the response's Set-Cookie headers changed, as a browser keeps it."""
    from http.cookies import SimpleCookie

    jar = dict(part.split("=", 1) for part in cookie.split("; ") if "=" in part)
    for header in response.headers.get_all("Set-Cookie") or []:
        for name, morsel in SimpleCookie(header).items():
            jar[name] = morsel.value
    return "; ".join(f"{k}={v}" for k, v in jar.items())


# --- load --------------------------------------------------------------------------------------------------

def polled_from(page: str | None, port: int | None = None) -> dict:
    """The headers of an htmx poll made by ``page`` (htmx 2 sends the page's URL in HX-Current-URL: the run page's
    own status poll also carries its Sandbox line, out of band)."""
    origin = f"http://127.0.0.1:{port}" if port else "http://localhost"
    return {"HX-Request": "true", **({"HX-Current-URL": origin + page} if page else {})}


def hammer(port: int, cookie: str, path: str, clients: int, seconds: float, htmx: bool, revalidate: bool,
           server_cpu=lambda: 0.0, page: str | None = None) -> dict:
    """``clients`` threads, one keep-alive connection each, GET ``path`` back to back for ``seconds`` (after one
    unmeasured request each). ``revalidate``: send the last ETag back in If-None-Match, as a browser cache does.
    ``server_cpu()``: the server's CPU seconds so far (its CPU ms per request hardly depends on the machine's load,
    unlike the wall times)."""
    barrier = threading.Barrier(clients + 1)
    times: list[list[float]] = [[] for _ in range(clients)]
    statuses: list[dict[int, int]] = [{} for _ in range(clients)]
    failures: list[int] = [0] * clients
    cookies_set: list[int] = [0] * clients  # responses that changed the session cookie (a browser would keep it)
    stop_at = [float("inf")]  # set once every client is connected and warm

    def run(k: int) -> None:
        client = c.Client(port, cookie=cookie, accept="*/*", timeout=30)
        base = polled_from(page, port) if htmx else {}
        etag = None
        try:
            try:
                client.request("GET", path, headers=base)
                etag = client.response.getheader("ETag")
                client.cookie = kept(client.cookie, client.response)
            except Exception:
                failures[k] += 1
            barrier.wait()
            while time.perf_counter() < stop_at[0]:
                headers = {**base, **({"If-None-Match": etag} if revalidate and etag else {})}
                try:
                    status, _ = client.request("GET", path, headers=headers)
                except Exception:
                    failures[k] += 1
                    client.close()
                    client = c.Client(port, cookie=cookie, accept="*/*", timeout=30)
                    continue
                times[k].append(client.elapsed * 1000)
                statuses[k][status] = statuses[k].get(status, 0) + 1
                if client.response.getheader("Set-Cookie"):
                    client.cookie = kept(client.cookie, client.response)
                    cookies_set[k] += 1
                if status == 200:
                    etag = client.response.getheader("ETag") or etag
        finally:
            client.close()

    pool = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(clients)]
    for t in pool:
        t.start()
    barrier.wait()
    cpu0, t0 = server_cpu(), time.perf_counter()
    stop_at[0] = t0 + seconds
    for t in pool:
        t.join()
    elapsed, cpu = time.perf_counter() - t0, server_cpu() - cpu0
    every = [v for row in times for v in row]
    status_count: dict[int, int] = {}
    for row in statuses:
        for code, n in row.items():
            status_count[code] = status_count.get(code, 0) + n
    errors = sum(failures) + sum(n for code, n in status_count.items() if code not in (200, 304))
    stats = c.ms_stats(every)
    return {"rps": len(every) / elapsed, "p50": stats["p50"], "p95": stats["p95"], "n": len(every),
            "cpu_ms": cpu * 1000 / max(1, len(every)),
            "errors": errors, "statuses": status_count, "cookies_set": sum(cookies_set)}


# --- diagnosis ---------------------------------------------------------------------------------------------

def explain(app, cookie: str, paths: list[tuple[str, str, str]], n: int = 200) -> None:
    """Each fragment ``n`` times in this process (Flask's test client, no HTTP): ms per request, then the
    cProfile lines of the app's own code, by cumulative time."""
    client = app.test_client(use_cookies=False)
    headers_of = {label: {"Cookie": cookie, "Accept": "*/*", **polled_from(page)} for label, _, page in paths}
    rows = []
    for label, path, _ in paths:
        headers = headers_of[label]
        for _ in range(10):
            client.get(path, headers=headers)
        t0 = time.perf_counter()
        for _ in range(n):
            response = client.get(path, headers=headers)
        plain = (time.perf_counter() - t0) * 1000 / n
        etag = response.headers.get("ETag")
        t0 = time.perf_counter()
        for _ in range(n):
            again = client.get(path, headers={**headers, **({"If-None-Match": etag} if etag else {})})
        revalidated = (time.perf_counter() - t0) * 1000 / n
        rows.append([label, response.status_code, len(response.get_data()), f"{plain:.2f}",
                     f"{revalidated:.2f} ({again.status_code})"])
    t0 = time.perf_counter()
    for _ in range(n):
        client.get("/ping")
    rows.append(["GET /ping", 200, "-", f"{(time.perf_counter() - t0) * 1000 / n:.2f}", "-"])
    c.print_table(["in-process request (Flask test client)", "status", "bytes", "ms full", "ms revalidated"],
                  rows, title=f"Diagnosis: where the time goes ({n} requests each, this process, no HTTP)")
    shares, headline = [], None
    for label, path, _ in paths:
        headers = headers_of[label]
        etag = client.get(path, headers=headers).headers.get("ETag")
        for mode, sent in (("full", headers), ("revalidated", {**headers, **({"If-None-Match": etag} if etag else {})})):
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(n):
                client.get(path, headers=sent)
            profiler.disable()
            shares.append([f"{label}, {mode}", *_shares(profiler, n)])
            headline = headline or (profiler if mode == "revalidated" else None)
    c.print_table(["cProfile, ms per request (inflated)", "request", "auth.guard (session, user)", "view",
                   " of it: version read", " of it: render"], shares,
                  title="Where one request's time goes (auth.guard: the session cookie, the Redis sign-out check "
                        "and the user's row; the view: the ETag's read and, when it changed, the page's reads and "
                        "its template)")
    c.print_profile(headline, "cumulative", f"\n{paths[0][0]}, revalidated: by cumulative time ({n} requests)",
                    restrict=r"webapp|flask_login|sqlalchemy/orm/session|redis/client", n=16)


def _shares(profiler, n: int) -> list[str]:
    """ms per request (cumulative, under cProfile) of the whole request, auth.guard, the view, the version
    read and the template render."""
    import pstats

    wanted = {"request": ("flask/app.py", "wsgi_app"), "guard": ("webapp/auth.py", "guard"),
              "view": ("views.py", "detail", "log"), "version": ("pages.py", "status_version", "log_version"),
              "render": ("flask/templating.py", "render_template")}
    found = dict.fromkeys(wanted, 0.0)
    for (filename, _, function), (_, _, _, cumulative, _) in pstats.Stats(profiler).stats.items():
        for key, (suffix, *names) in wanted.items():
            if filename.endswith(suffix) and function in names and ("webapp" in filename or key in ("request", "render")):
                found[key] += cumulative
    return [f"{found[k] * 1000 / n:.2f}" for k in wanted]


# --- main --------------------------------------------------------------------------------------------------

def main() -> int:
    args = parse_args()
    workers, threads = gunicorn_shape()
    with c.stack("cutover-bench-polling-", workers=0, gunicorn=False) as s:
        ids = seed(s.app, s.settings.admin_username)
        # production's settings (gunicorn.conf.py), a private address
        s.gunicorn, s.port = c.start_gunicorn(s.settings, s.tmp / "gunicorn.log", config=ROOT / "gunicorn.conf.py")
        cookie = browser_cookie(s.port, s.settings)
        # (label, the fragment, the page whose poll asks for it: htmx sends that page's URL along)
        fragments = [("migration status", f"/migrations/{ids['migration']}", f"/migrations/{ids['migration']}"),
                     ("run status", f"/runs/{ids['run']}", f"/runs/{ids['run']}"),
                     ("log tail", f"/runs/{ids['run']}/log?offset={ids['log_end']}", f"/runs/{ids['run']}")]
        results: dict[tuple, dict] = {}
        cpu = lambda: runs.tree_cpu([s.gunicorn])  # noqa: E731
        load_before = c.load_line()
        for clients in args.clients:
            results[(clients, "ping")] = hammer(s.port, cookie, "/ping", clients, args.seconds, False, False, cpu)
            for label, path, page in fragments:
                for revalidate in (False, True):
                    results[(clients, label, revalidate)] = hammer(s.port, cookie, path, clients, args.seconds,
                                                                   True, revalidate, cpu, page)
        load_after = c.load_line(cpus=False)

        rows = []
        for clients in args.clients:
            ping = results[(clients, "ping")]
            rows.append([f"{clients} clients: GET /ping (baseline)", f"{ping['rps']:.0f}", f"{ping['p50']:.1f}",
                         f"{ping['p95']:.1f}", ping["errors"], "1.00", f"{ping['cpu_ms']:.2f}", _codes(ping)])
            for label, _, _ in fragments:
                for revalidate in (False, True):
                    r = results[(clients, label, revalidate)]
                    rows.append([f"{clients} clients: {label}, {'revalidated' if revalidate else 'full'}",
                                 f"{r['rps']:.0f}", f"{r['p50']:.1f}", f"{r['p95']:.1f}", r["errors"],
                                 f"{r['rps'] / ping['rps']:.2f}", f"{r['cpu_ms']:.2f}", _codes(r)])
        c.print_table(["keep-alive clients polling", "req/s", "p50 ms", "p95 ms", "errors", "x /ping",
                       "server CPU ms/req", "statuses"],
                      rows, title=f"Polling, signed in: {args.seconds:g} s per row; gunicorn.conf.py: {workers} "
                                  f"workers x {threads} threads ({load_before} -> {load_after})")
        print("  (a shared, loaded machine gives noisy figures: compare the rows with /ping of the same run)")

        met_all = True
        for clients in args.clients:
            for label, _, _ in fragments:
                r = results[(clients, label, True)]
                ok = r["rps"] >= args.target_rps and r["p95"] <= args.target_ms and not r["errors"]
                value = f"{r['rps']:.0f} req/s, p95 {r['p95']:.1f} ms ({r['rps'] / results[(clients, 'ping')]['rps']:.2f}x /ping)"
                headline = clients == 50 and label == "migration status"
                target = f">= {args.target_rps:g} req/s and p95 <= {args.target_ms:g} ms"
                if clients == 50:
                    met_all &= ok
                    print(f"Target: {label} fragment at 50 clients, {target}: {'MET' if ok else 'MISSED'} ({value})"
                          + (" [headline]" if headline else ""))
                    c.record(f"polling: {label} fragment, 50 clients", value, target, ok)
                else:
                    print(f"  {label} fragment at {clients} clients (reference, no target): {value}")
                    c.record(f"polling: {label} fragment, {clients} clients", value, "reference", None)
        if not met_all:
            little(args, results)
        if not met_all or args.explain:
            explain(s.app, cookie, fragments)
    return 0


def little(args: argparse.Namespace, results: dict) -> None:
    """What the two halves of the target ask of each other: a closed loop (each client asks again the moment it is
    answered) has a mean latency of clients / rate (Little's law), so the rate alone sets the latency."""
    clients = 50 if 50 in args.clients else args.clients[0]
    ping = results[(clients, "ping")]
    print(f"  In a closed loop the mean latency is clients / rate (Little's law): at {args.target_rps:g} req/s, "
          f"{clients} clients wait {clients / args.target_rps * 1000:.0f} ms on average, so p95 <= "
          f"{args.target_ms:g} ms needs well over {clients / args.target_ms * 1000:.0f} req/s. GET /ping, which "
          f"does nothing, got {ping['rps']:.0f} req/s at p95 {ping['p95']:.1f} ms here "
          f"(mean {clients / ping['rps'] * 1000:.0f} ms).")


def _codes(r: dict) -> str:
    codes = ",".join(f"{code}:{n}" for code, n in sorted(r["statuses"].items()))
    return codes + (f" (Set-Cookie:{r['cookies_set']})" if r["cookies_set"] else "")


if __name__ == "__main__":
    sys.exit(main())
