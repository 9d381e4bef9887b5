"""Helpers of the test-run benchmarks (handover, overhead, throughput, logtail), on top of ``bench._common``.

The test files the benchmarks upload (they stamp their own start and end), the runs table read straight from
SQLite, bare-pytest baselines and the CPU of a process tree. Module-level imports are standard library (and
``bench._common``) only.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
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


def _ended():  # the wall time and this process's CPU seconds (user + system) when its tests are done
    _cpu = _os.times()
    with open("ended.txt", "w") as _fh:
        _fh.write(f"{_time.time():.6f} {_cpu.user + _cpu.system:.6f}\\n")


@__import__("pytest").fixture(scope="session", autouse=True)
def _cutover_bench_ended():  # the session's teardown: the last moment a test file sees (a run's pytest then
    yield                     # ends with os._exit, so an atexit stamp would never be written)
    _ended()
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


# --- the stack ----------------------------------------------------------------------------------------------------

class RunStack(c.Stack):
    """``bench._common.Stack`` plus the runs table, read on a fresh SQLite connection per call."""

    @property
    def runs_dir(self) -> Path:
        return self.settings.data_dir / "runs"

    def _in(self, ids: list[int], sql: str, extra=()) -> list:
        """``sql`` (with ``{marks}`` for the ids) over ``ids`` in chunks of 500."""
        found = []
        for lo in range(0, len(ids), 500):
            part = ids[lo:lo + 500]
            found += self.query(sql.format(marks=",".join("?" * len(part))), [*part, *extra])
        return found

    def rows(self, ids: list[int]) -> dict[int, dict]:
        """The runs as stored, times as epoch seconds."""
        keys = ("id", "environment_id", "state", "error", "exit_code", "job_id", "created_at", "dispatched_at",
                "started_at", "finished_at", "log_size")
        found = {}
        for values in self._in(ids, f"SELECT {', '.join(keys)} FROM runs WHERE id IN ({{marks}})"):
            row = dict(zip(keys, values))
            for key in ("created_at", "dispatched_at", "started_at", "finished_at"):
                row[key] = c.epoch(row[key])
            found[row["id"]] = row
        return found

    def state(self, run_id: int) -> str | None:
        found = self.query("SELECT state FROM runs WHERE id = ?", (run_id,))
        return found[0][0] if found else None

    def final_count(self, ids: list[int]) -> int:
        marks = ",".join("?" * len(FINAL))
        return sum(n for (n,) in self._in(ids, f"SELECT count(*) FROM runs WHERE id IN ({{marks}}) AND state IN "
                                               f"({marks})", FINAL))

    def wait_final(self, ids: list[int], timeout: float, interval: float = 0.05) -> None:
        c.wait_until(lambda: self.final_count(ids) >= len(ids), timeout=timeout, interval=interval,
                     message=f"{len(ids)} runs to end", alive=self.procs)

    def stamp(self, run_id: int) -> tuple[float, float]:
        """(module import time, pytest process start) written by the test file into the run's directory."""
        return read_stamp(self.runs_dir / str(run_id))

    def ended(self, run_id: int) -> tuple[float, float]:
        """(pytest's exit time, its CPU seconds), written by the test file at interpreter exit."""
        return read_stamp(self.runs_dir / str(run_id), "ended.txt")


def stack(prefix: str, workers: int = 2, threads: int = 4, **extra):
    """``bench._common.stack`` (gunicorn, ``workers`` × worker.py, the admin's token) as a ``RunStack``."""
    return c.stack(prefix, workers=workers, threads=threads, cls=RunStack, **extra)


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
