"""A schedule's body → checked values: every field's errors at once. ``test_files``, ``environment_id`` and
``pool`` follow a test run's rules (``domain.runs``); ``changes`` checks only the fields sent (a PATCH)."""
from __future__ import annotations

from typing import Any, Callable

from ..domain import runs, schedules
from ..domain.errors import ValidationError
from .errors import Errors, object_of
from .runs import target

DEFAULTS = {"priority": "normal", "enabled": True}


TARGET = ("environment_id", "pool")  # exactly one of them, as a run's (``inputs.runs.target``)


def _checks(file_exists: Callable[[str], bool]) -> dict[str, Callable[[Any], Any]]:
    return {"name": schedules.check_name, "cron": schedules.check_cron,
            "test_files": lambda v: runs.check_test_files(v, file_exists),
            "priority": schedules.check_priority, "enabled": schedules.check_enabled}


def schedule(data: Any, file_exists: Callable[[str], bool], environment_enabled: Callable[[int], bool],
             *, partial: bool = False, pool_exists: Callable[[str], bool] = lambda _: False) -> dict:
    """``{"name", "cron", "test_files", "environment_id", "pool", "priority", "enabled"}``; a new schedule
    names an ``environment_id`` or a ``pool`` and may leave out ``priority`` ("normal") and ``enabled`` (true);
    ``partial``: only what is sent (sending one of environment_id and pool clears the other)."""
    data = object_of(data, "", "The body")
    errors, clean = Errors(), {}
    if not partial or any(name in data for name in TARGET):
        clean.update(target(data, errors, environment_enabled, pool_exists))
    for name, check in _checks(file_exists).items():
        if partial and name not in data:
            continue
        try:
            clean[name] = check(data[name] if name in data else DEFAULTS.get(name))
        except ValidationError as exc:
            errors.absorb(exc)
    for name in sorted(set(data) - set(_checks(file_exists)) - set(TARGET)):
        errors.add(name, "Unknown field.")
    errors.raise_if_any()
    return clean
