"""A run's pipeline inside its environment's lock (issue 14): the environment's setup, the run's tests, its
teardown, each a sandboxed pytest process (``executor.Runner``) writing into the run's one log, every secret
of the environment masked in whatever is kept (log, JUnit XML, results, stages)."""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app

from ..db import update as sql_update
from ..domain import stages
from ..domain.masking import Masker
from ..domain.results import Summary
from ..domain.runs import RunState, outcome
from ..migrations import validation
from ..models import RunRow
from . import results, sandbox, testfiles
from .executor import LogWriter, Ran, Runner, scrubbed_environment


@dataclass
class Given:
    """What a run gets from its environment: variables and secrets (``environments.variables.for_run``) and its
    setup/teardown test files. Loaded by the job from the database, never passed in the job's arguments."""
    variables: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    setup: str | None = None
    teardown: str | None = None


def run_pytest(run_id: int, files: list[str], log_start: int, token: str, lock, given: Given | None = None) -> dict:
    """The run's processes inside its environment's lock: setup (if any), the tests unless setup failed, and
    teardown (if any) whatever happened before, even after a cancel or a timeout (with its own timeout)."""
    given, config = given or Given(), current_app.config
    run_dir = Path(config["RUNS_DIR"]) / str(run_id)
    shutil.rmtree(run_dir, ignore_errors=True)
    (run_dir / "tmp").mkdir(parents=True)
    staged = [f for f in (given.setup, given.teardown) if f]
    missing = testfiles.materialise(list(dict.fromkeys([*files, *staged])), run_dir)
    if missing:
        return {"state": RunState.ERROR.value, "error": f"test file no longer available: {', '.join(missing)}"}
    (run_dir / "pytest.ini").write_text("[pytest]\n")  # this directory is the rootdir: no outside config
    timeout, teardown_timeout = config["RUN_TIMEOUT_SECONDS"], config["TEARDOWN_TIMEOUT_SECONDS"]
    try:
        confinement = sandbox.plan(config["SANDBOX"], config["DATA_DIR"], run_dir,
                                   int(max(timeout, teardown_timeout)) + 10)
    except sandbox.SandboxUnavailable as exc:
        return {"state": RunState.ERROR.value, "error": f"sandbox unavailable: {exc}",
                "sandbox_mode": "unavailable", "sandbox_detail": str(exc)}
    make_session = current_app.extensions["db"]
    with make_session() as session:
        session.execute(sql_update(RunRow).where(RunRow.id == run_id).values(
            sandbox_mode=confinement.mode, sandbox_detail=confinement.detail))
        session.commit()
        target = validation.target_variables(session, run_id)
    masker = Masker(given.secrets.values())
    writer = LogWriter(make_session, run_id, start=log_start, masker=masker)
    writer.start()
    writer.write(f"# sandbox: {confinement.mode} - {confinement.detail}\n")
    env = scrubbed_environment(run_dir, target, {**given.variables, **given.secrets})
    runner = Runner(run_id, run_dir, confinement, env, writer, masker, results.install(run_dir), token, lock,
                    make_session, config["ENV_LOCK_TTL_SECONDS"] / 3)
    done: dict[str, dict] = {}
    setup = main = failure = None
    try:
        try:
            if given.setup:
                setup, done[stages.SETUP] = runner.stage(stages.SETUP, given.setup, timeout, cancellable=True)
                save_stages(make_session, run_id, token, done)
            if setup is None or done[stages.SETUP]["state"] == stages.PASSED:
                if staged:
                    writer.write(stages.header("tests", files))
                main = runner.pytest(files, "junit.xml", timeout - (setup.duration if setup else 0))
        except Exception as exc:  # our own failure: the teardown still runs, then the job ends the run in error
            failure = exc
        lost = any(ran is not None and ran.reason == "lost" for ran in (setup, main))
        if given.teardown and not lost:  # lost: another run may have the environment now
            _, done[stages.TEARDOWN] = runner.stage(stages.TEARDOWN, given.teardown, teardown_timeout, False)
            save_stages(make_session, run_id, token, done)
    finally:
        writer.close()
    if failure is not None:
        raise failure
    values = _values(main, timeout) if main else _setup_values(setup)
    return {**values, "stages": done or None}


def save_stages(make_session, run_id: int, token: str, done: dict) -> None:
    """The stages so far, on the run at once (its page shows them; the reaper reads whether teardown ran);
    fenced like its end: only while this job still holds the run."""
    with make_session() as session:
        session.execute(sql_update(RunRow).where(RunRow.id == run_id, RunRow.lock_token == token,
                                                 RunRow.state == RunState.RUNNING.value).values(stages=dict(done)))
        session.commit()


def _values(ran: Ran, timeout: float) -> dict:
    summary = ran.summary
    state, error = outcome(ran.exit_code, timed_out_after=timeout if ran.reason == "timeout" else None,
                           cancelled=ran.reason == "cancelled", summary=summary)
    if ran.reason == "lost":
        state, error = RunState.ERROR, "lost the environment lock"
    elif ran.exit_code == sandbox.SANDBOX_FAILED and ran.reason is None:
        state, error = RunState.ERROR, "sandbox unavailable: it could not be applied (the log says which step failed)"
    return {"state": state.value, "error": error, "exit_code": ran.exit_code, "junit_xml": ran.xml,
            "tests": [t.__dict__ for t in ran.tests], "summary": summary.as_dict()}


def _setup_values(setup: Ran) -> dict:
    """The run's outcome when its setup did not pass: its tests never ran."""
    if setup.reason == "cancelled":
        state, error = RunState.CANCELLED, "cancelled"
    elif setup.reason == "lost":
        state, error = RunState.ERROR, "lost the environment lock"
    else:
        state, error = RunState.ERROR, stages.SETUP_FAILED
    return {"state": state.value, "error": error, "summary": Summary().as_dict(), "tests": []}
