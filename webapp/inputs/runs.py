"""A new test run's body → checked values: where it runs (exactly one of ``environment_id`` and ``pool``),
its files and its priority; every field's errors at once. Schedules name where their runs go the same way."""
from __future__ import annotations

from typing import Any, Callable, Mapping

from ..domain import pools, runs
from ..domain.errors import ValidationError
from .bodies import acting_as
from .errors import Errors, object_of

BOTH = "Name an environment_id or a pool, not both."
NEITHER = "Choose an environment, or a pool (any free environment with that label)."


def _given(value: Any) -> bool:
    return value is not None and value != ""


def target(data: Mapping, errors: Errors, environment_enabled: Callable[[int], bool],
           pool_exists: Callable[[str], bool]) -> dict:
    """``{"environment_id": n, "pool": None}`` or ``{"environment_id": None, "pool": label}``; errors keyed on
    the field at fault (both: on ``pool``; neither: on ``environment_id``)."""
    env, pool = data.get("environment_id"), data.get("pool")
    if _given(env) and _given(pool):
        errors.add("pool", BOTH)
        return {}
    if _given(pool):
        try:
            label = pools.check_label(pool)
        except ValidationError as exc:
            errors.absorb(exc)
            return {}
        if not pool_exists(label):
            errors.add("pool", f"No enabled environment has the label {label}.")
            return {}
        return {"environment_id": None, "pool": label}
    if not _given(env):
        errors.add("environment_id", NEITHER)
        return {}
    try:
        environment_id = runs.check_environment_id(env)
    except ValidationError as exc:
        errors.absorb(exc)
        return {}
    if not environment_enabled(environment_id):
        errors.add("environment_id", f"Environment {environment_id} is disabled: choose another one.")
        return {}
    return {"environment_id": environment_id, "pool": None}


def run(data: Any, username: str, file_exists: Callable[[str], bool], environment_enabled: Callable[[int], bool],
        pool_exists: Callable[[str], bool] = lambda _: False) -> dict:
    """``{"username", "environment_id", "pool", "priority", "test_files"}`` of a new run for the account
    ``username``: another account's name is refused beside the others' (``environment_enabled`` is asked only
    about an id in range, ``pool_exists`` only about a well-formed label)."""
    data = object_of(data, "", "The body")
    errors, clean = Errors(), {}
    try:
        clean["username"] = runs.check_username(acting_as(data, "username", username))
    except ValidationError as exc:
        errors.absorb(exc)
    clean.update(target(data, errors, environment_enabled, pool_exists))
    for name, check in (("test_files", lambda v: runs.check_test_files(v, file_exists)),
                        ("priority", pools.check_priority)):
        try:
            clean[name] = check(data.get(name))
        except ValidationError as exc:
            errors.absorb(exc)
    errors.raise_if_any()
    return clean
