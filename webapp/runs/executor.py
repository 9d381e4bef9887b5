"""A test run's machinery (the job is ``jobs.run_tests``): pytest in its own process group, sandboxed, output
streamed into the log as it comes, a watchdog for cancel, timeout and the lock."""
from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from ..db import update as sql_update
from ..db import utcnow
from ..domain.results import Summary
from ..domain.runs import LogCap, RunState, outcome
from ..extensions import db, queues
from ..models import RunLogChunk, RunRow
from ..migrations import validation
from . import results, sandbox, testfiles


def cancel_key(run_id: int) -> str:
    return f"run-cancel:{run_id}"


def scrubbed_environment(run_dir: Path, target: dict[str, str] | None = None) -> dict[str, str]:
    """What pytest sees: no app settings or secrets, only what a Python process needs, and for a validation
    run its migration's target (``CUTOVER_*``: id, IP, cloud, volumes; never a credential)."""
    return {
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
    """Appends output to the run's log in the database as it arrives (batching what piles up)."""

    def __init__(self, make_session: sessionmaker, run_id: int, start: int = 0):
        super().__init__(name=f"run-{run_id}-log", daemon=True)
        self.make_session, self.run_id, self.size = make_session, run_id, start
        self.cap = LogCap()
        self.lines: queue.Queue[str | None] = queue.Queue()

    def write(self, text: str) -> None:
        self.lines.put(text)

    def close(self) -> None:
        self.lines.put(None)
        self.join()

    def run(self) -> None:
        with self.make_session() as session:
            done = False
            while not done:
                parts = [self.lines.get()]
                while not self.lines.empty() and parts[-1] is not None and sum(map(len, parts)) < 256_000:
                    parts.append(self.lines.get_nowait())
                done = parts[-1] is None
                # PostgreSQL text cannot hold NUL: show it as the replacement character
                text = self.cap.feed("".join(p for p in parts if p).replace("\x00", "\ufffd"))
                if text:
                    session.add(RunLogChunk(run_id=self.run_id, start=self.size, end=self.size + len(text), text=text))
                    self.size += len(text)
                    session.execute(sql_update(RunRow).where(RunRow.id == self.run_id).values(log_size=self.size))
                    session.commit()


class Watchdog(threading.Thread):
    """Renews the environment lock and heartbeat, and kills pytest on cancel, timeout or a lost lock."""

    def __init__(self, proc, run_id: int, token: str, lock, make_session, timeout: float, renew_every: float):
        super().__init__(name=f"run-{run_id}-watchdog", daemon=True)
        self.proc, self.run_id, self.token, self.lock = proc, run_id, token, lock
        self.make_session, self.timeout, self.renew_every = make_session, timeout, renew_every
        self.stopped = threading.Event()
        self.reason: str | None = None  # "cancelled", "timeout" or "lost"
        self.redis = queues.redis

    def run(self) -> None:
        started = last_renew = time.monotonic()
        while not self.stopped.wait(0.1):
            now = time.monotonic()
            if now - started > self.timeout:
                self._halt("timeout")
            elif self._cancel_requested():
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
        if row is not None and row[0]:
            self._halt("cancelled")
        return row is not None

    def _halt(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
            kill_group(self.proc)
        self.stopped.set()


def run_pytest(run_id: int, files: list[str], log_start: int, token: str, lock) -> dict:
    config = current_app.config
    run_dir = Path(config["RUNS_DIR"]) / str(run_id)
    shutil.rmtree(run_dir, ignore_errors=True)
    (run_dir / "tmp").mkdir(parents=True)
    missing = testfiles.materialise(files, run_dir)
    if missing:
        return {"state": RunState.ERROR.value, "error": f"test file no longer available: {', '.join(missing)}"}
    (run_dir / "pytest.ini").write_text("[pytest]\n")  # this directory is the rootdir: no outside config
    junit = run_dir / "junit.xml"
    # importlib mode: two uploaded files with the same name in different directories can run together
    # i.e. python -m pytest ...; the report's path is relative to the run directory: no server paths in the log
    args = ["-v", "-rA", "-p", "no:cacheprovider", *results.install(run_dir), "--import-mode=importlib",
            f"--junitxml={junit.name}", *files]
    timeout = config["RUN_TIMEOUT_SECONDS"]
    try:
        confinement = sandbox.plan(config["SANDBOX"], config["DATA_DIR"], run_dir, int(timeout) + 10)
    except sandbox.SandboxUnavailable as exc:
        return {"state": RunState.ERROR.value, "error": f"sandbox unavailable: {exc}",
                "sandbox_mode": "unavailable", "sandbox_detail": str(exc)}
    make_session = current_app.extensions["db"]
    with make_session() as session:
        session.execute(sql_update(RunRow).where(RunRow.id == run_id).values(
            sandbox_mode=confinement.mode, sandbox_detail=confinement.detail))
        session.commit()
        target = validation.target_variables(session, run_id)
    writer = LogWriter(make_session, run_id, start=log_start)
    writer.start()
    writer.write(f"# sandbox: {confinement.mode} - {confinement.detail}\n")
    writer.write(f"$ {' '.join(['pytest', *args])}\n")
    proc = subprocess.Popen(confinement.command(args), cwd=run_dir, env=scrubbed_environment(run_dir, target),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    watchdog = Watchdog(proc, run_id, token, lock, make_session, timeout,
                        renew_every=config["ENV_LOCK_TTL_SECONDS"] / 3)
    watchdog.start()
    try:
        for line in iter(proc.stdout.readline, b""):
            writer.write(line.decode("utf-8", errors="replace"))
        exit_code = proc.wait()
    finally:
        watchdog.stopped.set()
        watchdog.join()
        if proc.poll() is None:
            kill_group(proc)
        writer.close()
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # nothing pytest started may outlive the run
    except ProcessLookupError:
        pass
    xml = results.read_run_file(junit)
    tests = results.collect(run_dir, xml)
    summary = Summary.of(tests)
    state, error = outcome(exit_code, timed_out_after=timeout if watchdog.reason == "timeout" else None,
                           cancelled=watchdog.reason == "cancelled", summary=summary)
    if watchdog.reason == "lost":
        state, error = RunState.ERROR, "lost the environment lock"
    elif exit_code == sandbox.SANDBOX_FAILED and watchdog.reason is None:
        state, error = RunState.ERROR, "sandbox unavailable: it could not be applied (the log says which step failed)"
    return {"state": state.value, "error": error, "exit_code": exit_code, "junit_xml": xml,
            "tests": [t.__dict__ for t in tests], "summary": summary.as_dict()}


def log_size(run_id: int) -> int:
    return db.session.scalar(select(func.coalesce(func.max(RunLogChunk.end), 0)).where(RunLogChunk.run_id == run_id))
