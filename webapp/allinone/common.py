"""What every part of the all-in-one supervisor shares: its log line, its error, its settings."""
from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


class StartupError(Exception):
    """Something could not be started or died; the message says what."""


def log(message: str) -> None:
    """Print a status line of the supervisor (stderr, so stdout keeps the one URL line)."""
    print(f"[cutover] {message}", file=sys.stderr, flush=True)


def env_int(name: str, default: int, minimum: int) -> int:
    """Read an integer setting from the environment, failing clearly on a bad value."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise StartupError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise StartupError(f"{name} must be at least {minimum}, not {value}")
    return value
