"""Test runs: pytest on chosen test files in one test environment (1 to 100), one run per environment at a time.

The rules for a run's input, what pytest's exit code means, reading its JUnit XML report and capping
its log. Plain Python: the HTML forms, the JSON API and the workers share these.
"""
from __future__ import annotations

import enum
import re
import signal
from typing import Any, Callable

from .accounts import USERNAME_MAX  # a run's user is an account
from .errors import ValidationError
from .results import Summary, TestResult, parse_junit  # noqa: F401  (a run's results: results.py)
from .units import size_text

MAX_FILES = 50
ENVIRONMENT_IDS = range(1, 101)

_DIGITS = re.compile(r"[0-9]{1,9}")  # from a form; longer is out of range anyway


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
    exit_code: int | None, *, timed_out_after: float | None = None, cancelled: bool = False,
    summary: Summary | None = None,
) -> tuple[RunState, str | None]:
    """The final state of a run and, unless it simply passed or failed, why.

    Cancelling wins over a timeout, which wins over the exit code (the process was killed by us).
    A negative exit code is a signal, as ``subprocess`` reports it. A failed test or an error fails the run;
    xfailed, xpassed (not strict), skipped and passed tests do not: an exit code 0 whose ``summary`` has a
    failure (the results say otherwise) is a failed run too.
    """
    if cancelled:
        return RunState.CANCELLED, "cancelled"
    if timed_out_after is not None:
        return RunState.ERROR, f"timed out after {_number(timed_out_after)} s"
    if exit_code is None:
        return RunState.ERROR, "pytest did not run"
    if exit_code == 0:
        return (RunState.FAILED, None) if summary is not None and summary.failing else (RunState.SUCCESS, None)
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
