"""A schedule's body → checked values: every field's errors at once. ``test_files`` and ``environment_id``
follow a test run's rules (``domain.runs``); ``changes`` checks only the fields sent (a PATCH)."""
from __future__ import annotations

from typing import Any, Callable

from ..domain import runs, schedules
from ..domain.errors import ValidationError
from .errors import Errors, object_of

DEFAULTS = {"pool": None, "priority": "normal", "enabled": True}
REQUIRED = ("name", "cron", "test_files", "environment_id")


def _checks(file_exists: Callable[[str], bool]) -> dict[str, Callable[[Any], Any]]:
    return {"name": schedules.check_name, "cron": schedules.check_cron,
            "test_files": lambda v: runs.check_test_files(v, file_exists),
            "environment_id": runs.check_environment_id, "pool": schedules.check_pool,
            "priority": schedules.check_priority, "enabled": schedules.check_enabled}


def schedule(data: Any, file_exists: Callable[[str], bool], environment_enabled: Callable[[int], bool],
             *, partial: bool = False) -> dict:
    """``{"name", "cron", "test_files", "environment_id", "pool", "priority", "enabled"}``; a new schedule
    may leave out ``pool`` (null), ``priority`` ("normal") and ``enabled`` (true); ``partial``: only what is sent."""
    data = object_of(data, "", "The body")
    errors, clean = Errors(), {}
    for name, check in _checks(file_exists).items():
        if partial and name not in data:
            continue
        try:
            clean[name] = check(data[name] if name in data else DEFAULTS.get(name))
        except ValidationError as exc:
            errors.absorb(exc)
    for name in sorted(set(data) - set(_checks(file_exists))):
        errors.add(name, "Unknown field.")
    if "environment_id" in clean and not environment_enabled(clean["environment_id"]):
        errors.add("environment_id", f"Environment {clean['environment_id']} is disabled: choose another one.")
    errors.raise_if_any()
    return clean
