"""Each test's result in a run: what it holds, its caps, and reading it from pytest's reports.

Two sources, both written inside the run (so both untrusted): our pytest plugin's JSON lines (preferred:
real outcomes such as xfailed/xpassed, the message, the traceback, the test's file and line) and pytest's JUnit
XML (the fallback when the plugin's file is missing or unreadable). Plain Python.
"""
from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass

OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
FAILING = ("failed", "error")
NODEID_MAX = 1000        # characters (the column's size)
MESSAGE_MAX = 1000       # characters: the first line of the reason
FILE_MAX = 512           # characters (the column's size)
DETAILS_MAX_BYTES = 64 * 1024
DETAILS_MARKER = "\n[details truncated at 64 KiB]"
MAX_RESULTS = 20_000     # per run; what comes after is dropped
LINE_MAX = 10_000_000    # a source line number past this is not one
_MODULE = re.compile(r"^(test_.*|.*_test)$")  # pytest's default python_files, without ".py"
_RANK = {"passed": 0, "xpassed": 1, "skipped": 2, "xfailed": 3, "failed": 4, "error": 5}  # the worst phase wins


@dataclass
class TestResult:
    """One test: its pytest node id, one of ``OUTCOMES``, seconds taken (setup + call + teardown), and, where
    known, the reason (first line), the traceback (at most 64 KiB) and the test's file and 1-based line."""

    __test__ = False  # not a test class, though its name starts with Test

    nodeid: str
    outcome: str
    duration: float
    message: str | None = None
    details: str | None = None
    file: str | None = None
    line: int | None = None


@dataclass
class Summary:
    total: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    xfailed: int = 0
    xpassed: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def failing(self) -> bool:
        """A failed test or an error: the run failed (xfailed, xpassed, skipped and passed do not fail it)."""
        return bool(self.failed or self.errors)

    @classmethod
    def of(cls, tests: list[TestResult]) -> "Summary":
        counts = {o: sum(t.outcome == o for t in tests) for o in OUTCOMES}
        return cls(len(tests), counts["passed"], counts["failed"], counts["error"], counts["skipped"],
                   counts["xfailed"], counts["xpassed"])


# --- the caps ----------------------------------------------------------------------------------------

def _text(value) -> str | None:
    """A string that is valid UTF-8 (a lone surrogate becomes "?") without NUL (PostgreSQL text cannot hold
    either), or None."""
    if not isinstance(value, str):
        return None
    if not value.isascii():
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value.replace("\x00", "\ufffd")


def first_line(value, limit: int = MESSAGE_MAX) -> str | None:
    text = _text(value)
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()[:limit]
    return None


def cap_details(value) -> str | None:
    """The traceback text, at most 64 KiB of UTF-8 (cut between characters), then the marker line."""
    text = _text(value)
    if not text or not text.strip():
        return None
    data = text.encode("utf-8", "replace")
    if len(data) <= DETAILS_MAX_BYTES:
        return text
    return data[:DETAILS_MAX_BYTES].decode("utf-8", "ignore") + DETAILS_MARKER


def seconds(value) -> float:
    """A duration in seconds: a finite number 0 or more, anything else 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    return float(value) if math.isfinite(value) and value >= 0 else 0.0


def clean(entry) -> TestResult | None:
    """One result out of untrusted data (a dict), checked and capped; None when it is not one."""
    if not isinstance(entry, dict):
        return None
    nodeid, outcome = _text(entry.get("nodeid")), entry.get("outcome")
    if not nodeid or not nodeid.strip() or outcome not in OUTCOMES:
        return None
    line, file = entry.get("line"), _text(entry.get("file"))
    line = line if isinstance(line, int) and not isinstance(line, bool) and 0 < line <= LINE_MAX else None
    message = None if outcome == "passed" else first_line(entry.get("message"))
    return TestResult(nodeid[:NODEID_MAX], outcome, seconds(entry.get("duration")), message,
                      None if outcome == "passed" else cap_details(entry.get("details")),
                      file[:FILE_MAX] if file else None, line)


def read_lines(text) -> tuple[list[TestResult], bool]:
    """The results in our plugin's JSON lines (one per test, then ``{"end": n}``), and whether they are whole:
    the end was written (the session finished) after exactly ``n`` results and nothing else. Lines that are not
    results are skipped; a node id seen twice keeps its first result; at most ``MAX_RESULTS``."""
    if not isinstance(text, str):
        return [], False
    found: dict[str, TestResult] = {}
    ended, lines = False, 0
    for line in text.splitlines():
        try:
            entry = json.loads(line.strip("\x00 \t"))
        except (ValueError, RecursionError):
            entry = None
        if isinstance(entry, dict) and set(entry) == {"end"}:
            ended = entry["end"] == lines == len(found) and type(entry["end"]) is int
            continue
        lines += 1
        result = clean(entry)
        if result is not None and result.nodeid not in found:
            found[result.nodeid] = result
            if len(found) >= MAX_RESULTS:
                break
    return list(found.values()), ended


def choose(plugin: tuple[list[TestResult], bool], junit: list[TestResult]) -> list[TestResult]:
    """What a run's results are: the plugin's when its session ended; else JUnit's (where the plugin knows a test,
    its richer result), or, without a JUnit report (pytest was killed), whatever the plugin wrote."""
    tests, ended = plugin
    if ended and tests:
        return tests
    if junit:
        known = {t.nodeid: t for t in tests}
        return [known.get(t.nodeid, t) for t in junit][:MAX_RESULTS]
    return tests


# --- JUnit XML ---------------------------------------------------------------------------------------

def _nodeid(classname: str, name: str, file: str | None) -> str:
    """pytest's node id back from a JUnit testcase, best effort.

    pytest writes ``a/b/test_x.py::TestK::test_y[1]`` as classname ``a.b.test_x.TestK``, name ``test_y[1]``
    (and a collection error of ``a/b/test_x.py`` as classname ``""``, name ``a.b.test_x``). With a ``file``
    attribute (``junit_family=xunit1``) the module is known. Without it, the trailing classname parts
    that start with a capital letter and are not named like a test module (``test_*``, ``*_test``) are
    classes; the rest is the module's path. Directories or modules with dots in their names come back wrong.
    """
    parts = [p for p in classname.split(".") if p] if classname else []
    if not parts:
        return name.replace(".", "/") + ".py" if name else ""
    cut = len(parts)
    while cut > 1 and parts[cut - 1][:1].isupper() and not _MODULE.match(parts[cut - 1]):
        cut -= 1
    path = "/".join(parts[:cut]) + ".py"
    if file:
        path = file.replace("\\", "/")
        module = re.sub(r"\.py$", "", path).replace("/", ".").split(".")
        if parts[: len(module)] == module:
            cut = len(module)
    return "::".join([path, *parts[cut:], name])


def _case(case: ET.Element) -> tuple[str, str | None, str | None]:
    """A testcase's outcome, message and details (pytest marks an xfail as ``<skipped type="pytest.xfail">``)."""
    found = {child.tag: child for child in case}
    for tag, outcome in (("error", "error"), ("failure", "failed"), ("skipped", "skipped")):
        if tag in found:
            child = found[tag]
            if tag == "skipped" and child.get("type") == "pytest.xfail":
                outcome = "xfailed"
            message = child.get("message")
            if tag == "skipped" and message and message.startswith("Skipped: "):
                message = message[len("Skipped: "):]
            return outcome, first_line(message), None if tag == "skipped" else cap_details(child.text)
    return "passed", None, None


def _seconds(value: str | None) -> float:
    try:
        return seconds(float(value or 0))
    except ValueError:
        return 0.0


def parse_junit(xml_text: str) -> tuple[list[TestResult], Summary]:
    """The tests in a pytest JUnit XML report, in report order, and their counts; ``([], Summary())`` if unreadable.

    A test reported twice (pytest writes a failing test whose teardown errors as two testcases) is one
    result with the worse outcome and the durations added up. An xfail is ``xfailed``; pytest writes a
    non-strict xpass as a pass, so here it is ``passed`` (the plugin knows better).
    """
    empty: tuple[list[TestResult], Summary] = ([], Summary())
    if not isinstance(xml_text, (str, bytes)) or not xml_text.strip():
        return empty
    if (b"<!DOCTYPE" if isinstance(xml_text, bytes) else "<!DOCTYPE") in xml_text:
        return empty  # pytest never writes one; refusing it keeps entity tricks out
    try:
        root = ET.fromstring(xml_text)
    except (ET.ParseError, ValueError):
        return empty
    if root.tag not in ("testsuites", "testsuite"):
        return empty
    results: dict[str, TestResult] = {}
    for case in root.iter("testcase"):
        nodeid = _nodeid(case.get("classname", ""), case.get("name", ""), case.get("file"))[:NODEID_MAX]
        if not nodeid:
            continue
        outcome, message, details = _case(case)
        result = TestResult(nodeid, outcome, _seconds(case.get("time")), message, details)
        known = results.get(nodeid)
        if known is None:
            if len(results) < MAX_RESULTS:
                results[nodeid] = result
            continue
        known.duration += result.duration
        if _RANK[result.outcome] > _RANK[known.outcome]:
            known.outcome, known.message = result.outcome, known.message or result.message
            known.details = known.details or result.details
    tests = list(results.values())
    return tests, Summary.of(tests)
