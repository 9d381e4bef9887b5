"""Each test's result of a run: our pytest plugin in the run directory, reading what it wrote (or the JUnit
report), one ``test_results`` row per test at the run's end, and reading them back for the run's JSON and page."""
from __future__ import annotations

import logging
import os
import stat
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Iterable

from sqlalchemy import insert, select

from ..domain.results import FAILING, TestResult, choose, clean, parse_junit, read_lines
from ..models import TestResultRow

log = logging.getLogger(__name__)
PLUGIN = "cutover_report"                     # the module pytest loads with -p, written into the run directory
OUTPUT = "cutover-results.jsonl"              # what it writes there (see report_plugin.py)
READ_MAX = 64 * 1024 * 1024                   # bytes read of a file the run wrote, at most
SOURCE = (Path(__file__).with_name("report_plugin.py")).read_text()
FIELDS = ("nodeid", "outcome", "duration", "message", "details", "file", "line")
LIGHT = ("nodeid", "outcome", "duration", "message", "file", "line")  # the runs list: no traceback, no flags


def install(run_dir: Path) -> list[str]:
    """Write the plugin into the run directory (the sandbox lets the run read only that); pytest's arguments."""
    (run_dir / f"{PLUGIN}.py").write_text(SOURCE)
    return ["-p", PLUGIN]


def read_run_file(path: Path, limit: int = READ_MAX) -> str | None:
    """A regular file the run wrote, never through a link (a run could point one at the worker's secrets)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(os.dup(fd), "rb") as file:
            return file.read(limit).decode("utf-8", errors="replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def collect(run_dir: Path, junit_xml: str | None) -> list[TestResult]:
    """The run's results: the plugin's when it finished, else JUnit's (enriched by what the plugin wrote)."""
    junit = parse_junit(junit_xml or "")[0]
    try:
        return choose(read_lines(read_run_file(run_dir / OUTPUT)), junit)
    except Exception:  # never our reading of what a run wrote ends the run in error: JUnit's then
        log.exception("could not read the results the plugin wrote in %s", run_dir)
        return junit


def record(session, run_id: int, environment_id: int, finished_at: datetime | None,
           results: Iterable[TestResult | dict]) -> int:
    """Insert the run's results (checked again: they came from the run) in one statement; the caller commits."""
    rows = []
    for result in results:
        test = clean(asdict(result) if isinstance(result, TestResult) else result)
        if test is not None:
            rows.append({"run_id": run_id, "environment_id": environment_id, "finished_at": finished_at,
                         **asdict(test)})
    if rows:
        session.execute(insert(TestResultRow), rows)
    return len(rows)


def _legacy(tests) -> list[dict]:
    """A run recorded before test_results (only ``runs.tests``: nodeid, outcome, duration)."""
    found = []
    for entry in tests if isinstance(tests, list) else []:
        test = clean(entry)
        if test is not None:
            found.append(asdict(test))
    return found


def for_run(session, run_id: int, legacy=None) -> list[dict]:
    """Every test of one run in the order it ran, with its traceback and its ``flaky``/``new_failure`` flags."""
    from ..testhistory import stats

    columns = [getattr(TestResultRow, name) for name in FIELDS]
    rows = session.execute(select(*columns).where(TestResultRow.run_id == run_id).order_by(TestResultRow.id)).all()
    tests = [dict(zip(FIELDS, row)) for row in rows] if rows else _legacy(legacy)
    flags = stats.flags(session, run_id) if tests else {}
    for test in tests:
        flag = flags.get(test["nodeid"]) or {}
        test["flaky"], test["new_failure"] = bool(flag.get("flaky")), bool(flag.get("new_failure"))
    return tests


def for_runs(session, runs: list) -> dict[int, list[dict]]:
    """The tests of a page of runs in one query, without tracebacks or flags (the list stays light)."""
    ids = [run.id for run in runs]
    found: dict[int, list[dict]] = {i: [] for i in ids}
    if ids:
        columns = [TestResultRow.run_id, *(getattr(TestResultRow, name) for name in LIGHT)]
        for run_id, *values in session.execute(select(*columns).where(TestResultRow.run_id.in_(ids))
                                               .order_by(TestResultRow.run_id, TestResultRow.id)):
            found[run_id].append(dict(zip(LIGHT, values)))
    for run in runs:
        if not found[run.id] and run.tests:
            found[run.id] = [{k: t[k] for k in LIGHT} for t in _legacy(run.tests)]
    return found


def page_view(tests: list[dict], outcome: str | None) -> dict:
    """The run page's results: failures and errors first (each with its traceback), then the rest in the order
    run; ``outcome`` keeps only that one; the slowest 10."""
    shown = [t for t in tests if outcome is None or t["outcome"] == outcome]
    failing = [t for t in shown if t["outcome"] in FAILING]
    others = [t for t in shown if t["outcome"] not in FAILING]
    slowest = sorted(tests, key=lambda t: -t["duration"])[:10]
    counts = {o: sum(t["outcome"] == o for t in tests) for o in dict.fromkeys(t["outcome"] for t in tests)}
    return {"failing": failing, "others": others, "slowest": slowest, "outcome": outcome, "counts": counts}
