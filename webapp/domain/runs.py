"""Test runs: pytest on chosen test files in one test environment (1 to 100), one run per environment at a time.

The rules for a run's input, what pytest's exit code means, reading its JUnit XML report and capping
its log. Plain Python: the HTML forms, the JSON API and the workers share these.
"""
from __future__ import annotations

import enum
import re
import signal
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from typing import Any, Callable

from .accounts import USERNAME_MAX  # a run's user is an account
from .errors import ValidationError
from .units import size_text

MAX_FILES = 50
ENVIRONMENT_IDS = range(1, 101)

_DIGITS = re.compile(r"[0-9]{1,9}")  # from a form; longer is out of range anyway
_MODULE = re.compile(r"^(test_.*|.*_test)$")  # pytest's default python_files, without ".py"


class RunState(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    ERROR = "error"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (RunState.SUCCESS, RunState.FAILED, RunState.ERROR, RunState.CANCELLED)


# --- input -----------------------------------------------------------------------------------------

def check_username(value: Any) -> str:
    """The name of who starts the run: 1 to 64 printable characters, surrounding whitespace trimmed."""
    if not isinstance(value, str):
        raise ValidationError.single("username", "Username is required.")
    name = value.strip()
    if not name:
        raise ValidationError.single("username", "Username is required.")
    if len(name) > USERNAME_MAX:
        raise ValidationError.single("username", f"Username must be at most {USERNAME_MAX} characters.")
    if not name.isprintable():
        raise ValidationError.single(
            "username", "Username may only contain printable characters: no tabs, line breaks or control characters."
        )
    return name


def check_environment_id(value: Any) -> int:
    """An environment from 1 to 100, as an int or (from a form) a string of digits."""
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value not in ENVIRONMENT_IDS:
        raise ValidationError.single(
            "environment_id", f"Choose an environment from {ENVIRONMENT_IDS[0]} to {ENVIRONMENT_IDS[-1]}."
        )
    return value


def check_test_files(value: Any, exists: Callable[[str], bool]) -> list[str]:
    """1 to 50 distinct paths of available test files, in the order given; ``exists`` asks about each once.

    Each message names one offending path, e.g. ``Not an available test file: uploads/x/test_a.py``.
    """
    if value is None or (isinstance(value, (list, tuple)) and not value):
        raise ValidationError.single("test_files", "Choose at least one test file.")
    if not isinstance(value, (list, tuple)):
        raise ValidationError.single("test_files", "Test files must be a list of paths.")
    if len(value) > MAX_FILES:
        raise ValidationError.single("test_files", f"At most {MAX_FILES} test files per run.")
    errors: list[str] = []
    seen: set[str] = set()
    for path in value:
        if not isinstance(path, str) or not path.strip():
            message = "Each test file must be a path such as sample_tests/test_passing.py."
        elif path in seen:
            message = f"Listed twice: {path}"
        else:
            seen.add(path)
            message = None if exists(path) else f"Not an available test file: {path}"
        if message and message not in errors:
            errors.append(message)
    if errors:
        raise ValidationError({"test_files": errors})
    return list(value)


# --- outcome ---------------------------------------------------------------------------------------

_EXIT_CODES = {
    2: "pytest was interrupted (exit code 2)",
    3: "pytest hit an internal error (exit code 3)",
    4: "pytest was called with a wrong command line: usage error (exit code 4)",
    5: "no tests were collected (exit code 5)",
}


def _number(value: float) -> str:
    """``300.0`` as ``300``, ``2.5`` as ``2.5``."""
    return str(int(value)) if float(value).is_integer() else str(value)


def outcome(
    exit_code: int | None, *, timed_out_after: float | None = None, cancelled: bool = False
) -> tuple[RunState, str | None]:
    """The final state of a run and, unless it simply passed or failed, why.

    Cancelling wins over a timeout, which wins over the exit code (the process was killed by us).
    A negative exit code is a signal, as ``subprocess`` reports it.
    """
    if cancelled:
        return RunState.CANCELLED, "cancelled"
    if timed_out_after is not None:
        return RunState.ERROR, f"timed out after {_number(timed_out_after)} s"
    if exit_code is None:
        return RunState.ERROR, "pytest did not run"
    if exit_code == 0:
        return RunState.SUCCESS, None
    if exit_code == 1:
        return RunState.FAILED, None
    if exit_code in _EXIT_CODES:
        return RunState.ERROR, _EXIT_CODES[exit_code]
    if exit_code < 0:
        try:
            name = signal.Signals(-exit_code).name
        except ValueError:
            name = str(-exit_code)
        return RunState.ERROR, f"pytest was killed by signal {name}"
    return RunState.ERROR, f"pytest exited with code {exit_code}"


# --- JUnit XML -------------------------------------------------------------------------------------

_RANK = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}  # the worst outcome of a test's phases wins


@dataclass
class TestResult:
    """One test: its pytest node id, ``passed``, ``failed``, ``error`` or ``skipped``, and seconds taken."""

    __test__ = False  # not a test class, though its name starts with Test

    nodeid: str
    outcome: str
    duration: float


@dataclass
class Summary:
    total: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


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


def _case_outcome(case: ET.Element) -> str:
    tags = {child.tag for child in case}
    if "error" in tags:
        return "error"
    if "failure" in tags:
        return "failed"
    if "skipped" in tags:
        return "skipped"
    return "passed"


def _seconds(value: str | None) -> float:
    try:
        seconds = float(value or 0)
    except ValueError:
        return 0.0
    return seconds if seconds >= 0 and seconds != float("inf") else 0.0


def parse_junit(xml_text: str) -> tuple[list[TestResult], Summary]:
    """The tests in a pytest JUnit XML report, in report order, and their counts; ``([], Summary())`` if unreadable.

    A test reported twice (pytest writes a failing test whose teardown errors as two testcases) is one
    result with the worse outcome (error > failed > skipped > passed) and the durations added up.
    xfail is reported by pytest as skipped, a non-strict xpass as passed.
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
        nodeid = _nodeid(case.get("classname", ""), case.get("name", ""), case.get("file"))
        result = TestResult(nodeid, _case_outcome(case), _seconds(case.get("time")))
        known = results.get(nodeid)
        if known is None:
            results[nodeid] = result
            continue
        known.duration += result.duration
        if _RANK[result.outcome] > _RANK[known.outcome]:
            known.outcome = result.outcome
    tests = list(results.values())
    counts = {outcome: sum(t.outcome == outcome for t in tests) for outcome in _RANK}
    summary = Summary(len(tests), counts["passed"], counts["failed"], counts["error"], counts["skipped"])
    return tests, summary


# --- log -------------------------------------------------------------------------------------------

class LogCap:
    """Keeps a run's log within ``limit_bytes`` of UTF-8: ``feed`` each piece of output, store what it returns.

    The piece that crosses the limit is cut (never inside a character) and followed, once, by a marker
    line; everything after that is dropped. The stored total is at most the limit plus the marker.
    """

    def __init__(self, limit_bytes: int = 5 * 1024 * 1024):
        if isinstance(limit_bytes, bool) or not isinstance(limit_bytes, int) or limit_bytes < 0:
            raise ValueError("limit_bytes must be a whole number of bytes, 0 or more")
        self.limit = limit_bytes
        self.used = 0
        self._truncated = False
        self.marker = f"\n[log truncated: output beyond {size_text(limit_bytes)} was dropped]\n"

    @property
    def truncated(self) -> bool:
        return self._truncated

    def feed(self, text: str) -> str:
        if self._truncated or not text:
            return ""
        data = text.encode("utf-8", "surrogatepass")
        if self.used + len(data) <= self.limit:
            self.used += len(data)
            return text
        head = data[: self.limit - self.used]
        for drop in range(4):  # a character cut in half is left out whole
            try:
                kept = head[: len(head) - drop].decode("utf-8", "surrogatepass")
                break
            except UnicodeDecodeError:
                continue
        else:  # pragma: no cover - four bytes always reach a character boundary
            kept = ""
        self.used += len(kept.encode("utf-8", "surrogatepass"))
        self._truncated = True
        return kept + self.marker
