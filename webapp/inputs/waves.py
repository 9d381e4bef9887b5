"""A new wave's body → checked values: every field's errors at once; the migrations' own problems (no such
migration, already migrated, running, in another unfinished wave) come from ``problems`` under ``migration_ids``."""
from __future__ import annotations

from typing import Any, Callable

from ..domain import waves
from ..domain.errors import ValidationError
from .errors import Errors, object_of

FIELDS = (("name", waves.check_name), ("migration_ids", waves.check_migration_ids),
          ("max_parallel", waves.check_max_parallel), ("start_at", waves.check_start_at),
          ("stop_on_error", waves.check_stop_on_error))
DEFAULTS = {"max_parallel": 1, "start_at": None, "stop_on_error": False}


def wave(data: Any, problems: Callable[[list[int]], list[str]]) -> dict:
    """``{"name", "migration_ids", "max_parallel", "start_at", "stop_on_error"}`` of a new wave. ``max_parallel``
    (1), ``start_at`` (null: at once) and ``stop_on_error`` (false) may be left out; ``problems(ids)`` says
    what is wrong with the listed migrations (asked only when the list itself is well-formed)."""
    data = object_of(data, "", "The body")
    errors, clean = Errors(), {}
    for name, check in FIELDS:
        try:
            clean[name] = check(data[name] if name in data else DEFAULTS.get(name))
        except ValidationError as exc:
            errors.absorb(exc)
    for name in sorted(set(data) - {n for n, _ in FIELDS}):
        errors.add(name, "Unknown field.")
    if "migration_ids" in clean:
        for message in problems(clean["migration_ids"]):
            errors.add("migration_ids", message)
    errors.raise_if_any()
    return clean
