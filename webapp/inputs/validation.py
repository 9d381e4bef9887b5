"""A migration's ``validation`` (the test run its target must pass), with the same rules as a test run's input."""
from __future__ import annotations

from typing import Any, Callable, Mapping

from ..domain import runs
from ..domain.errors import ValidationError
from .errors import Errors, object_of


def validation(value: Any, file_exists: Callable[[str], bool], environment_enabled: Callable[[int], bool],
               current: Mapping | None = None) -> dict | None:
    """A migration's ``validation``: ``{"test_files", "environment_id"}`` with a test run's rules (errors keyed
    ``validation.test_files`` / ``validation.environment_id``), or None (``null``: no validation). The read-only
    ``run_id`` and ``state`` of its JSON may be sent back unchanged."""
    if value is None:
        return None
    value = object_of(value, "validation", "Validation")
    errors, clean = Errors(), {}
    for name in ("run_id", "state"):
        if name in value and value[name] != (current or {}).get(name):
            errors.add(f"validation.{name}", "This field cannot be changed.")
    for name, check in (("test_files", lambda v: runs.check_test_files(v, file_exists)),
                        ("environment_id", runs.check_environment_id)):
        try:
            clean[name] = check(value.get(name))
        except ValidationError as exc:
            errors.absorb(exc, "validation")
    if "environment_id" in clean and not environment_enabled(clean["environment_id"]):
        errors.add("validation.environment_id",
                   f"Environment {clean['environment_id']} is disabled: choose another one.")
    errors.raise_if_any()
    return clean
