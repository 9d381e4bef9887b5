"""A test run's machinery (the job is ``jobs.run_tests``, its stages ``pipeline.run_pytest``): pytest in its own
process group, sandboxed, output streamed into the log as it comes (secrets masked), a watchdog for cancel,
timeout and the lock."""
from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from redis.exceptions import RedisError
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from ..db import update as sql_update
from ..db import utcnow
from ..domain import stages
from ..domain.results import Summary, TestResult
from ..domain.masking import Masker
from ..domain.runs import LogCap, RunState
from ..extensions import db, queues
from ..models import RunLogChunk, RunRow
from . import results


def cancel_key(run_id: int) -> str:
    return f"run-cancel:{run_id}"


def scrubbed_environment(run_dir: Path, target: dict[str, str] | None = None,
                         given: dict[str, str] | None = None) -> dict[str, str]:
    """What pytest sees: no app settings or secrets, only what a Python process needs, for a validation
    run its migration's target (``CUTOVER_*``: id, IP, cloud, volumes; never a credential), and ``given``: the
    environment's variables and secrets with CUTOVER_ENVIRONMENT_ID/NAME and CUTOVER_RUN_ID (reserved names
    are refused when they are set; the process settings here win anyway)."""
    return {
        **(given or {}),
        **(target or {}),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(run_dir),
        "TMPDIR": str(run_dir / "tmp"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        # the app's own pytest plugins (hypothesis, schemathesis, ...) are not the tests' business,
        # and loading them costs seconds per run
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }


def kill_group(proc: subprocess.Popen, grace: float = 0.5) -> None:
    """SIGTERM the whole process group, then SIGKILL whatever is left after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            os.killpg(proc.pid, signal.SIGKILL)  # children that outlived their parent
        except (subprocess.TimeoutExpired, ProcessLookupError):
            continue
        return


class LogWriter(threading.Thread):
    """Appends output to the run's log in the database as it arrives (batching what piles up), every secret
    of the run masked first (a value split across two pieces too: the masker holds back a possible start)."""

    def __init__(self, make_session: sessionmaker, run_id: int, start: int = 0, masker: Masker | None = None):
        super().__init__(name=f"run-{run_id}-log", daemon=True)
        self.make_session, self.run_id, self.size = make_session, run_id, start
        self.cap, self.masker = LogCap(), masker or Masker(())
        self.lines: queue.Queue[str | None] = queue.Queue()

    def write(self, text: str) -> None:
        self.lines.put(text)

    def close(self) -> None:
        self.lines.put(None)
        self.join()

    LINGER_SECONDS = 0.025  # after a first piece, what arrives this soon shares its write (pytest prints by lines)

    def _batch(self) -> list[str | None]:
        """The next piece and whatever follows within ``LINGER_SECONDS`` (at most 256 kB); the end at once."""
        parts = [self.lines.get()]
        deadline = time.monotonic() + self.LINGER_SECONDS
        while parts[-1] is not None and sum(map(len, parts)) < 256_000:
            try:
                parts.append(self.lines.get(timeout=max(deadline - time.monotonic(), 0)))
            except queue.Empty:
                break
        return parts

    def run(self) -> None:
        with self.make_session() as session:
            done = False
            while not done:
                parts = self._batch()
                done = parts[-1] is None
                # PostgreSQL text cannot hold NUL: show it as the replacement character
                text = self.masker.feed("".join(p for p in parts if p).replace("\x00", "\ufffd"))
                text = self.cap.feed(text + (self.masker.flush() if done else ""))
                if text:
                    session.add(RunLogChunk(run_id=self.run_id, start=self.size, end=self.size + len(text), text=text))
                    self.size += len(text)
                    session.execute(sql_update(RunRow).where(RunRow.id == self.run_id).values(log_size=self.size))
                    session.commit()


class Watchdog(threading.Thread):
    """Renews the environment lock and heartbeat, and kills pytest on cancel, timeout or a lost lock."""

    def __init__(self, proc, run_id: int, token: str, lock, make_session, timeout: float, renew_every: float,
                 cancellable: bool = True):
        super().__init__(name=f"run-{run_id}-watchdog", daemon=True)
        self.proc, self.run_id, self.token, self.lock = proc, run_id, token, lock
        self.make_session, self.timeout, self.renew_every = make_session, timeout, renew_every
        self.cancellable = cancellable  # a teardown runs to its end (or its own timeout) after a cancel
        self.stopped = threading.Event()
        self.reason: str | None = None  # "cancelled", "timeout" or "lost"
        self.redis = queues.redis

    def run(self) -> None:
        started = last_renew = time.monotonic()
        while not self.stopped.wait(0.1):
            now = time.monotonic()
            if now - started > self.timeout:
                self._halt("timeout")
            elif self.cancellable and self._cancel_requested():
                self._halt("cancelled")
            elif now - last_renew >= self.renew_every:
                last_renew = now
                if not self._renew():
                    self._halt("lost")

    def _cancel_requested(self) -> bool:
        try:
            return bool(self.redis.exists(cancel_key(self.run_id)))
        except RedisError:
            return False

    def _renew(self) -> bool:
        try:
            if not self.lock.extend(self.token):
                return False
        except RedisError:
            pass  # Redis is away: keep going, the key is taken back when it returns
        with self.make_session() as session:
            row = session.execute(sql_update(RunRow).where(
                RunRow.id == self.run_id, RunRow.state == RunState.RUNNING.value, RunRow.lock_token == self.token)
                .values(heartbeat_at=utcnow()).returning(RunRow.cancel_requested)).first()
            session.commit()
        if row is not None and row[0] and self.cancellable:
            self._halt("cancelled")
        return row is not None

    def _halt(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
            kill_group(self.proc)
        self.stopped.set()


@dataclass
class Ran:
    """One pytest process of a run: how it ended and what it reported (masked)."""
    exit_code: int | None
    reason: str | None
    xml: str | None
    tests: list[TestResult]
    duration: float

    @property
    def summary(self) -> Summary:
        return Summary.of(self.tests)


class Runner:
    """Starts the run's pytest processes one after another (setup, the tests, teardown): same directory, sandbox,
    environment and log; each watched for cancel, its timeout and the lock."""

    def __init__(self, run_id, run_dir, confinement, env, writer, masker, plugin, token, lock, make_session,
                 renew_every):
        self.run_id, self.run_dir, self.confinement, self.env = run_id, run_dir, confinement, env
        self.writer, self.masker, self.plugin, self.token, self.lock = writer, masker, plugin, token, lock
        self.make_session, self.renew_every = make_session, renew_every

    def pytest(self, files: list[str], junit_name: str, timeout: float, cancellable: bool = True) -> Ran:
        # importlib mode: two uploaded files with the same name in different directories can run together
        # i.e. python -m pytest ...; the report's path is relative to the run directory: no server paths in the log
        args = ["-v", "-rA", "-p", "no:cacheprovider", *self.plugin, "--import-mode=importlib",
                f"--junitxml={junit_name}", *files]
        self.writer.write(f"$ {' '.join(['pytest', *args])}\n")
        started = time.monotonic()
        proc = subprocess.Popen(self.confinement.command(args), cwd=self.run_dir, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        watchdog = Watchdog(proc, self.run_id, self.token, self.lock, self.make_session, max(timeout, 0.1),
                            renew_every=self.renew_every, cancellable=cancellable)
        watchdog.start()
        try:
            for line in iter(proc.stdout.readline, b""):
                self.writer.write(line.decode("utf-8", errors="replace"))
            exit_code = proc.wait()
        finally:
            watchdog.stopped.set()
            watchdog.join()
            if proc.poll() is None:
                kill_group(proc)
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # nothing pytest started may outlive the run
        except ProcessLookupError:
            pass
        xml = self.masker.mask(results.read_run_file(self.run_dir / junit_name))
        tests = [masked(self.masker, t) for t in results.collect(self.run_dir, xml)]
        for name in (junit_name, results.OUTPUT):  # the next process of the run starts from a clean slate
            _remove(self.run_dir / name)
        return Ran(exit_code, watchdog.reason, xml, tests, round(time.monotonic() - started, 3))

    def stage(self, name: str, file: str, timeout: float, cancellable: bool) -> tuple[Ran, dict]:
        self.writer.write(stages.header(name, [file]))
        ran = self.pytest([file], f"{name}.xml", timeout, cancellable)
        outcome_ = stages.state(ran.exit_code, ran.reason, ran.summary)
        self.writer.write(f"===== {name} {outcome_} =====\n")
        return ran, {"file": file, "state": outcome_, "exit_code": ran.exit_code, "summary": ran.summary.as_dict(),
                     "duration": ran.duration,
                     "tests": [{"nodeid": t.nodeid, "outcome": t.outcome, "duration": t.duration,
                                "message": (t.message or "")[:2000] or None} for t in ran.tests[:200]]}


def _remove(path: Path) -> None:
    """A file the run may have turned into a directory or a link: gone, whatever it is (never followed)."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass


def masked(masker: Masker, test: TestResult) -> TestResult:
    """A test's result with every secret of the run masked in its texts (node id, reason, traceback, file)."""
    return replace(test, **{name: masker.mask(getattr(test, name)) for name in ("nodeid", "message", "details", "file")})


def log_size(run_id: int) -> int:
    return db.session.scalar(select(func.coalesce(func.max(RunLogChunk.end), 0)).where(RunLogChunk.run_id == run_id))
