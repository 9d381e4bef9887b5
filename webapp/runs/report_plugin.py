"""Cutover's pytest plugin: each test's result as one JSON line, from pytest's own reports.

The executor writes this file's text into the run directory as ``cutover_report.py`` and passes
``-p cutover_report``: under the sandbox the app's own code is out of reach, the run directory is not. Standard
library and pytest only. One line per test, written when its teardown is reported (a run killed half-way keeps
the tests that ended), and ``{"end": n}`` (how many lines came before) once the session is over. Test code can write to the file too, so the
worker reads it as untrusted input (``domain/results.read_lines``).
"""
import json
import os
import sys

import pytest

OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cutover-results.jsonl")
DETAILS_MAX = 70_000  # characters; the worker caps at 64 KiB with its marker
RANK = {"passed": 0, "xpassed": 1, "skipped": 2, "xfailed": 3, "failed": 4, "error": 5}

_state = {"out": None, "tests": {}, "count": 0, "exit": None}


def _write(entry):
    out = _state["out"]
    if out is None:
        return
    try:
        out.write(json.dumps(entry) + "\n")
        out.flush()
    except (OSError, ValueError, TypeError):
        pass  # the tests closed or removed it: the worker falls back to the JUnit report


def _first_line(text):
    for line in str(text or "").splitlines():
        if line.strip():
            return line.strip()[:1000]
    return None


def _message(report, outcome):
    if outcome in ("xfailed", "xpassed"):
        return _first_line(getattr(report, "wasxfail", "")) or None
    longrepr = report.longrepr
    if outcome == "skipped" and isinstance(longrepr, tuple) and len(longrepr) == 3:
        text = str(longrepr[2])
        return _first_line(text[len("Skipped: "):] if text.startswith("Skipped: ") else text)
    crash = getattr(longrepr, "reprcrash", None)
    if crash is None:  # a collection error: its text; the last "E   ..." line says what went wrong
        text = str(longrepr or "")
        errors = [line[1:].strip() for line in text.splitlines() if line.startswith("E ") and line[1:].strip()]
        return _first_line(errors[-1] if errors else text)
    text = crash.message
    if text.startswith("Failed: "):  # pytest.fail("boom"): its reason is "boom"
        text = text[len("Failed: "):]
    return _first_line(text)


def _details(report, outcome):
    if outcome in ("passed", "xpassed", "skipped") or report.longrepr is None:
        return None
    text = str(report.longrepr)
    return text[:DETAILS_MAX] if text.strip() else None


def _phase_outcome(report):
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    if report.when in ("setup", "teardown") and report.failed:
        return "error"
    return report.outcome  # passed, failed, skipped


def pytest_configure(config):
    if _state["out"] is None:
        try:
            # appending: a test that truncates the file leaves no hole of NULs before the next line
            _state["out"] = open(OUTPUT, "a", encoding="utf-8")  # noqa: SIM115 - open for the whole session
            _state["out"].truncate(0)
        except OSError:
            _state["out"] = None


def pytest_runtest_logreport(report):
    tests = _state["tests"]
    phase = _phase_outcome(report)
    entry = tests.get(report.nodeid)
    if entry is None:
        file, line = None, None
        location = getattr(report, "location", None)
        if location:
            file = location[0]
            line = location[1] + 1 if isinstance(location[1], int) else None
        entry = tests[report.nodeid] = {"nodeid": report.nodeid, "outcome": "passed", "duration": 0.0,
                                        "message": None, "details": None, "file": file, "line": line}
    entry["duration"] += float(getattr(report, "duration", 0.0) or 0.0)
    if phase != "passed" or report.when == "call":
        if report.when == "call" or RANK[phase] > RANK[entry["outcome"]]:  # call comes after a setup that passed
            entry["outcome"] = phase
        if entry["message"] is None:
            entry["message"] = _message(report, phase)
        details = _details(report, phase)
        if details:
            entry["details"] = details if entry["details"] is None else (
                f"{entry['details']}\n\n--- {report.when} ---\n{details}")[:DETAILS_MAX]
    if report.when == "teardown":
        _write(tests.pop(report.nodeid))
        _state["count"] += 1


def pytest_collectreport(report):
    if report.passed:
        return
    outcome = "error" if report.failed else "skipped"
    path = report.nodeid or (report.fspath if isinstance(getattr(report, "fspath", None), str) else "")
    _write({"nodeid": report.nodeid or path, "outcome": outcome, "duration": 0.0,
            "message": _message(report, outcome), "details": _details(report, outcome),
            "file": path.split("::")[0] or None, "line": None})
    _state["count"] += 1


def pytest_sessionfinish(session, exitstatus):
    _state["exit"] = int(exitstatus)
    for entry in list(_state["tests"].values()):  # a test whose teardown never came
        _write(entry)
        _state["count"] += 1
    _state["tests"].clear()
    _write({"end": _state["count"]})
    out, _state["out"] = _state["out"], None
    if out is not None:
        try:
            out.close()
        except OSError:
            pass


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """pytest is done: results and JUnit XML written, the summary printed, every plugin unconfigured. End the
    process now, with pytest's exit status: the interpreter's own shutdown (tens of milliseconds of modules
    torn down and objects collected) would only delay the run's end. Test code's ``atexit`` handlers do not run
    (the worker kills the process group right after anyway)."""
    code = _state.get("exit")
    if code is None:  # no session ran (a usage error): pytest ends as it would
        return
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(code)
