"""Preflight: what a migration must pass before it may run, each rule a plain function that returns a ``Check``
(no Flask, no SQL: ``migrations/preflight.py`` gathers what they need). Every message says what is wrong, or
right, in words a user acts on."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from .migration import SYSTEM_VOLUME
from .workloads import normalise_volume

# The stable names of the checks, in the order they are shown (the API's contract).
NAMES = ("system_volume", "volumes", "credentials", "exclusive_source", "validation")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    message: str

    def as_json(self) -> dict:
        return {"name": self.name, "ok": self.ok, "message": self.message}


def system_volume(selected: Iterable[str]) -> Check:
    if SYSTEM_VOLUME in {normalise_volume(n) for n in selected}:
        return Check("system_volume", True, f"The system volume {SYSTEM_VOLUME} is selected.")
    return Check("system_volume", False,
                 f"The system volume {SYSTEM_VOLUME} is not selected: edit the migration and select it.")


def volumes(selected: Iterable[str], storage: Iterable[str] | None, source: str) -> Check:
    """``storage``: the names of the source's volumes now (None: the source workload is gone)."""
    if storage is None:
        return Check("volumes", False, f"The source workload {source} no longer exists.")
    present = {normalise_volume(n).upper() for n in storage}
    gone = [normalise_volume(n) for n in selected if normalise_volume(n).upper() not in present]
    if not gone:
        return Check("volumes", True, f"Every selected volume is still a volume of {source}.")
    names = ", ".join(gone)
    what = "is no longer a volume" if len(gone) == 1 else "are no longer volumes"
    return Check("volumes", False, f"{names} {what} of {source}. Edit the migration's volumes (or the workload).")


def credentials(unreadable: list[str]) -> Check:
    """``unreadable``: the stored passwords the current key cannot read, named for people."""
    if not unreadable:
        return Check("credentials", True,
                     "The cloud password and the source workload's password can be read with the current key.")
    names = " and ".join(unreadable)
    it = "it was" if len(unreadable) == 1 else "they were"
    return Check("credentials", False,
                 f"{names[0].upper()}{names[1:]} cannot be read with the current CREDENTIALS_KEY (was it changed?): "
                 f"ask the operator to add back the key {it} encrypted with.")


def exclusive_source(running: list[int], source: str) -> Check:
    """``running``: the ids of the OTHER migrations of the same source that are running."""
    if not running:
        return Check("exclusive_source", True, f"No other migration of {source} is running.")
    ids = ", ".join(f"#{i}" for i in running)
    verb = "is" if len(running) == 1 else "are"
    return Check("exclusive_source", False,
                 f"Migration {ids} of {source} {verb} running: wait for it to end, or cancel it, before running this one.")


def validation(spec: dict | None, missing_files: list[str], environment: tuple[str, bool] | None) -> Check:
    """``spec``: the migration's validation (None: no validation run); ``missing_files``: its test files that no
    longer exist; ``environment``: (name, enabled) of its environment, None when there is no such environment."""
    if spec is None:
        return Check("validation", True, "No validation run.")
    problems = []
    if missing_files:
        files, it = ("files", "them") if len(missing_files) > 1 else ("file", "it")
        problems.append(f"Validation test {files} not found: {', '.join(missing_files)} (upload {it} again, or edit "
                        "the migration's validation).")
    env = spec.get("environment_id")
    if environment is None:
        problems.append(f"Validation environment #{env} does not exist: choose another one.")
    elif not environment[1]:
        problems.append(f"Validation environment #{env} ({environment[0]}) is disabled: an admin may enable it, or "
                        "choose another one.")
    if problems:
        return Check("validation", False, " ".join(problems))
    count = len(spec.get("test_files") or [])
    return Check("validation", True, f"{count} validation test file{'s' if count != 1 else ''} found; environment "
                                     f"#{env} ({environment[0]}) is enabled.")


def failed(checks: Iterable[Check]) -> list[Check]:
    return [c for c in checks if not c.ok]
