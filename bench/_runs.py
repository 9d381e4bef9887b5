"""Helpers shared by the test-run benchmarks (handover, overhead, throughput, logtail).

A whole private stack (redis-server, temporary DATA_DIR, gunicorn, ``python worker.py`` × N), a keep-alive JSON
client for the API, the test files the benchmarks upload, bare-pytest baselines and the runs table read straight
from SQLite. Module-level imports are standard library (and ``bench._common``) only.
"""
from __future__ import annotations

import http.client
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from bench import _common as c

FINAL = ("success", "failed", "error", "cancelled")

# --- the test files ---------------------------------------------------------------------------------------------

# Records, at import (module level), the wall time and when its process started, into ./started.txt: the run's
# directory (the executor's cwd) or the baseline's scratch directory. The process start is read from
# /proc/self/stat (field 22, in clock ticks since boot: 10 ms resolution, truncated, so it reads 0-10 ms early)
# against CLOCK_BOOTTIME read at the same moment as time.time().
_STAMP = '''import os as _os
import time as _time

_IMPORTED = _time.time()
try:
    _BOOT = _time.clock_gettime(_time.CLOCK_BOOTTIME)
    with open("/proc/self/stat") as _fh:
        _ticks = int(_fh.read().rsplit(")", 1)[1].split()[19])
    _PROC_START = _IMPORTED - (_BOOT - _ticks / _os.sysconf("SC_CLK_TCK"))
except (OSError, ValueError, IndexError, AttributeError):
    _PROC_START = float("nan")
with open("started.txt", "w") as _fh:
    _fh.write(f"{_IMPORTED:.6f} {_PROC_START:.6f}\\n")


def _ended():  # at interpreter exit: the wall time and this process's CPU seconds (user + system)
    _cpu = _os.times()
    with open("ended.txt", "w") as _fh:
        _fh.write(f"{_time.time():.6f} {_cpu.user + _cpu.system:.6f}\\n")


__import__("atexit").register(_ended)
'''

TRIVIAL = _STAMP + '''

def test_trivial():
    assert True
'''

ONE_SECOND = _STAMP + '''

def test_one_second():
    _time.sleep(1.0)
'''


def ticker(seconds: float, interval: float) -> str:
    """A test that prints ``tick <i> <time.time()>`` every ``interval`` s for ``seconds`` s, past pytest's capture."""
    count = max(1, round(seconds / interval))
    return f'''import time


def test_ticks(capsys):
    with capsys.disabled():
        print("", flush=True)  # end pytest's "path::test_ticks " line (-v) so that every tick has a line of its own
        start = time.monotonic()
        for i in range({count}):
            print(f"tick {{i:03d}} {{time.time():.6f}}", flush=True)
            time.sleep(max(0.0, start + (i + 1) * {interval!r} - time.monotonic()))
'''


# --- time -----------------------------------------------------------------------------------------------------

def epoch(value: str | None) -> float | None:
    """A stored (naive UTC) or API (ISO, +00:00) time as seconds since the epoch."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def ms_stats(values: list[float]) -> dict:
    values = [v for v in values if v == v]  # drop NaN
    if not values:
        return {"n": 0, "p50": float("nan"), "p95": float("nan"), "max": float("nan"), "min": float("nan")}
    return {"n": len(values), "p50": c.percentile(values, 50), "p95": c.percentile(values, 95), "max": max(values),
            "min": min(values)}


def stats_row(label: str, values: list[float], extra: list | None = None) -> list:
    s = ms_stats(values)
    return [label, s["n"], f"{s['p50']:.1f}", f"{s['p95']:.1f}", f"{s['max']:.1f}", *(extra or [])]


def median(values) -> float:
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


# --- the API ----------------------------------------------------------------------------------------------------

class Api:
    """One keep-alive HTTP connection to gunicorn; reconnects (and retries once) if the server closed it.
    Every call sends ``Authorization: Bearer <token>``; ``username``: the token's account (a run's user)."""

    def __init__(self, port: int, token: str | None = None, username: str = c.ADMIN_USERNAME):
        self.port, self.token, self.username = port, token, username
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.reconnects = 0

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        for attempt in range(2):
            try:
                auth = {"Authorization": f"Bearer {self.token}"} if self.token else {}
                self.conn.request(method, path, body=body, headers={"Accept": "application/json", **auth, **(headers or {})})
                response = self.conn.getresponse()
                data = response.read()
                return response.status, data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if attempt:
                    raise
                self.conn.close()
                self.reconnects += 1
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, payload=None, expect: int = 200):
        body = None if payload is None else json.dumps(payload).encode()
        status, data = self.request(method, path, body, {"Content-Type": "application/json"} if body else None)
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


# --- the stack ----------------------------------------------------------------------------------------------------

@dataclass
class Stack:
    tmp: Path
    settings: c.Settings
    port: int
    workers: list = field(default_factory=list)
    gunicorn: object = None
    token: str | None = None  # the admin's API token (HTTP Basic on POST /api/v1/tokens once the stack is up)

    @property
    def db_path(self) -> str:
        return self.settings.database_url[len("sqlite:///"):]

    @property
    def runs_dir(self) -> Path:
        return self.settings.data_dir / "runs"

    def api(self) -> Api:
        return Api(self.port, self.token, self.settings.admin_username)

    def rows(self, ids: list[int]) -> dict[int, dict]:
        """The runs as stored, times as epoch seconds (a fresh read-only SQLite connection, as lists.py does)."""
        if not ids:
            return {}
        con = sqlite3.connect(self.db_path, timeout=30)
        try:
            con.row_factory = sqlite3.Row
            found = {}
            for lo in range(0, len(ids), 500):
                part = ids[lo:lo + 500]
                for r in con.execute(
                        f"SELECT id, environment_id, state, error, exit_code, job_id, created_at, dispatched_at, "
                        f"started_at, finished_at, log_size FROM runs WHERE id IN ({','.join('?' * len(part))})",
                        part):
                    row = dict(r)
                    for key in ("created_at", "dispatched_at", "started_at", "finished_at"):
                        row[key] = epoch(row[key])
                    found[row["id"]] = row
            return found
        finally:
            con.close()

    def state(self, run_id: int) -> str | None:
        con = sqlite3.connect(self.db_path, timeout=30)
        try:
            row = con.execute("SELECT state FROM runs WHERE id = ?", (run_id,)).fetchone()
            return row[0] if row else None
        finally:
            con.close()

    def final_count(self, ids: list[int]) -> int:
        con = sqlite3.connect(self.db_path, timeout=30)
        try:
            total = 0
            for lo in range(0, len(ids), 500):
                part = ids[lo:lo + 500]
                total += con.execute(f"SELECT count(*) FROM runs WHERE id IN ({','.join('?' * len(part))}) AND state IN "
                                     f"({','.join('?' * len(FINAL))})", [*part, *FINAL]).fetchone()[0]
            return total
        finally:
            con.close()

    def wait_final(self, ids: list[int], timeout: float, interval: float = 0.05) -> None:
        c.wait_until(lambda: self.final_count(ids) >= len(ids), timeout=timeout, interval=interval,
                     message=f"{len(ids)} runs to end", alive=[self.gunicorn, *self.workers])

    def stamp(self, run_id: int) -> tuple[float, float]:
        """(module import time, pytest process start) written by the test file into the run's directory."""
        return read_stamp(self.runs_dir / str(run_id))

    def ended(self, run_id: int) -> tuple[float, float]:
        """(pytest's exit time, its CPU seconds), written by the test file at interpreter exit."""
        return read_stamp(self.runs_dir / str(run_id), "ended.txt")

    def print_logs(self, lines: int = 20) -> None:
        for log in sorted(self.tmp.glob("*.log")):
            print(f"--- {log.name}\n{c.tail(log, lines)}", file=sys.stderr)


@contextmanager
def stack(prefix: str, workers: int = 2, threads: int = 4, **extra):
    """redis-server + temporary DATA_DIR + gunicorn (1 worker × ``threads``) + ``python worker.py`` × ``workers``."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmpdir:
        tmp = Path(tmpdir)
        redis_server = c.RedisServer(tmp / "redis").start()
        procs = []
        try:
            settings = c.Settings(tmp / "data", redis_server.url, **extra)
            # Tables and the 100 environments once, here, rather than by gunicorn and the workers racing to it.
            from webapp import create_app

            app = create_app(settings.config())
            app.extensions["db"].kw["bind"].dispose()
            gunicorn, port = c.start_gunicorn(settings, tmp / "gunicorn.log", threads=threads)
            procs.append(gunicorn)
            procs += c.start_workers(settings, workers, tmp)
            yield Stack(tmp, settings, port, procs[1:], gunicorn, c.api_token(port, settings, name=prefix.strip("-")))
        except BaseException:
            for log in sorted(tmp.glob("*.log")):
                print(f"--- {log.name}\n{c.tail(log, 25)}", file=sys.stderr)
            raise
        finally:
            for proc in procs:
                c.stop_process(proc)
            redis_server.stop()


# --- bare pytest ----------------------------------------------------------------------------------------------

def read_stamp(directory: Path, name: str = "started.txt") -> tuple[float, float]:
    """started.txt: (module import time, process start); ended.txt: (exit time, the process's CPU seconds)."""
    try:
        first, second = (float(x) for x in (directory / name).read_text().split())
        return first, second
    except (OSError, ValueError):
        return float("nan"), float("nan")


class Bare:
    """``python -m pytest <file>`` in a scratch directory of its own (a ``[pytest]`` pytest.ini makes it the
    rootdir, as the executor does for a run's directory), output discarded, from the same interpreter.

    The baseline runs with PYTEST_DISABLE_PLUGIN_AUTOLOAD=1, as the executor runs every test process
    (webapp/runs/executor.py scrubbed_environment): the pytest plugins installed in the app's venv for its own tests
    (hypothesis, schemathesis, anyio, ...) cost most of a second per start and no run ever loads them, so a baseline
    that loaded them would flatter the app. ``kind="autoload"`` is the literal ``python -m pytest`` with them."""

    KINDS = ("bare", "executor", "unconfined", "autoload")

    def __init__(self, workdir: Path, files: dict[str, str]):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "pytest.ini").write_text("[pytest]\n")
        for name, text in files.items():
            (self.dir / name).write_text(text)

    def command(self, name: str, kind: str = "bare") -> tuple[list[str], dict | None, object]:
        if kind == "bare":
            return [sys.executable, "-m", "pytest", name], {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}, None
        if kind == "autoload":
            env = dict(os.environ)
            env.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
            return [sys.executable, "-m", "pytest", name], env, None
        if kind not in ("executor", "unconfined"):
            raise ValueError(kind)
        # What the executor spawns (webapp/runs/executor.py run_pytest): its flags, scrubbed environment, resource
        # limits and sandbox (SANDBOX=auto; "unconfined": SANDBOX=off), by hand, without the app around it.
        from webapp.runs import executor, sandbox

        (self.dir / "tmp").mkdir(exist_ok=True)
        plan = sandbox.plan("auto" if kind == "executor" else "off", str(self.dir.parent / "data"), self.dir, 610)
        return (plan.command(["-v", "-rA", "-p", "no:cacheprovider", "--import-mode=importlib",
                              f"--junitxml={self.dir / 'junit.xml'}", name]), executor.scrubbed_environment(self.dir),
                None)

    def run(self, name: str, kind: str = "bare") -> dict:
        """Wall time of the subprocess, and (if the file stamps itself) spawn -> process start and -> import."""
        argv, env, preexec = self.command(name, kind)
        for stale in ("started.txt", "ended.txt"):
            (self.dir / stale).unlink(missing_ok=True)
        import resource

        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        spawn = time.time()
        t0 = time.perf_counter()
        proc = subprocess.run(argv, cwd=self.dir, env=env, preexec_fn=preexec, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)  # (only exact when no other child ended meanwhile)
        cpu_total = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        imported, started = read_stamp(self.dir)
        ended, cpu = read_stamp(self.dir, "ended.txt")
        return {"wall": wall, "spawn": spawn, "exit": proc.returncode, "to_import": imported - spawn,
                "to_proc": started - spawn, "import": imported, "proc_start": started, "ended": ended, "cpu": cpu,
                "cpu_total": cpu_total, "cpu_after_atexit": cpu_total - cpu}


def load_line(cpus: bool = True) -> str:
    return f"load average {os.getloadavg()[0]:.2f}" + (f" on {os.cpu_count()} CPUs" if cpus else "")


def tree_cpu(procs) -> float:
    """CPU seconds (user + system) used so far by ``procs`` and their descendants: every live process's own time
    plus what it collected from children it reaped (so an exited RQ work horse and its pytest count too)."""
    import psutil

    total = 0.0
    for proc in procs:
        try:
            root = psutil.Process(proc.pid)
            family = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for p in family:
            try:
                t = p.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
            except psutil.Error:
                pass
    return total


def pytest_plugins_line() -> str:
    """The pytest plugins this venv would autoload (entry points ``pytest11``)."""
    import importlib.metadata

    names = sorted({ep.name for ep in importlib.metadata.entry_points(group="pytest11")})
    return ("pytest plugins installed in the venv: " + (", ".join(names) if names else "none")
            + "; the executor runs pytest with PYTEST_DISABLE_PLUGIN_AUTOLOAD=1, and so do the bare baselines")
