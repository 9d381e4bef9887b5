"""Waves: a batch of migrations run together, FIFO, at most ``max_parallel`` at a time, from ``start_at``.

The rules in plain Python (no Flask, no SQL): the input's fields, the wave's life (``scheduled → running →
done | failed | cancelled``, plus ``paused``) and ``plan``, the engine's one decision: given the members in
order and what their migrations are doing, which to start now and whether the wave has ended.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

from .errors import DomainError, InvalidStateError, ValidationError

NAME_MAX = 128
MIN_PARALLEL, MAX_PARALLEL = 1, 50
MAX_MEMBERS = 1000  # migrations in one wave
MAX_ID = 2**31 - 1


class WaveState(str, enum.Enum):
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in FINAL


FINAL = frozenset({WaveState.DONE, WaveState.FAILED, WaveState.CANCELLED})
UNFINISHED = tuple(s.value for s in WaveState if s not in FINAL)

# What a person may do to a wave, from which states.
ACTIONS = {
    "pause": {WaveState.SCHEDULED, WaveState.RUNNING},
    "resume": {WaveState.PAUSED},
    "cancel": {WaveState.SCHEDULED, WaveState.RUNNING, WaveState.PAUSED},
}


def check_action(action: str, state: WaveState, started: bool = False) -> WaveState:
    """The state ``action`` moves a wave in ``state`` to, or ``InvalidStateError``. ``started``: the wave has
    started once (a paused wave that never started goes back to ``scheduled`` when resumed)."""
    if state not in ACTIONS[action]:
        raise InvalidStateError(f"A wave that is {state.value} cannot be {ACTION_PAST[action]}.")
    if action == "pause":
        return WaveState.PAUSED
    if action == "cancel":
        return WaveState.CANCELLED
    return WaveState.RUNNING if started else WaveState.SCHEDULED


ACTION_PAST = {"pause": "paused", "resume": "resumed", "cancel": "cancelled"}


# --- the input -------------------------------------------------------------------------------------

def check_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError.single("name", f"Name is required (text of 1 to {NAME_MAX} characters).")
    value = value.strip()
    if len(value) > NAME_MAX:
        raise ValidationError.single("name", f"Name must be at most {NAME_MAX} characters.")
    if not value.isprintable():
        raise ValidationError.single("name", "Name must be printable characters (no line breaks).")
    return value


def check_max_parallel(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_PARALLEL <= value <= MAX_PARALLEL:
        raise ValidationError.single("max_parallel", f"Max parallel must be a whole number from {MIN_PARALLEL} to "
                                                     f"{MAX_PARALLEL}.")
    return value


def check_stop_on_error(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValidationError.single("stop_on_error", "Stop on error must be true or false.")
    return value


def check_start_at(value: Any) -> datetime | None:
    """None (start at once), or an ISO 8601 date and time; one without a timezone is taken as UTC."""
    if value is None:
        return None
    message = "Start at must be an ISO 8601 date and time, e.g. 2030-01-31T22:00:00Z (or null: at once)."
    if not isinstance(value, str) or not 10 <= len(value.strip()) <= 40:
        raise ValidationError.single("start_at", message)
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError.single("start_at", message) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        return parsed.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        raise ValidationError.single("start_at", message) from None


def check_migration_ids(value: Any) -> list[int]:
    """A non-empty list of distinct migration ids, in the order they are to start."""
    if not isinstance(value, list) or not value:
        raise ValidationError.single("migration_ids", "Choose at least one migration (a list of their ids).")
    if len(value) > MAX_MEMBERS:
        raise ValidationError.single("migration_ids", f"A wave holds at most {MAX_MEMBERS} migrations.")
    bad = [v for v in value if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_ID]
    if bad:
        raise ValidationError.single("migration_ids", "Migration ids must be whole numbers of 1 or more.")
    repeated = sorted({v for v in value if value.count(v) > 1})
    if repeated:
        raise ValidationError.single("migration_ids", "Each migration may be listed once; repeated: "
                                     + ", ".join(f"#{v}" for v in repeated) + ".")
    return list(value)


def member_problem(migration_id: int, state: str | None, wave: tuple[int, str] | None) -> str | None:
    """Why a migration may not join a new wave (None: it may). ``state``: its state (None: no such
    migration); ``wave``: (id, name) of an unfinished wave it already belongs to."""
    if state is None:
        return f"No migration has id {migration_id}."
    if wave is not None:
        return f"Migration #{migration_id} already belongs to wave #{wave[0]} ({wave[1]}), which has not finished."
    if state == "success":
        return f"Migration #{migration_id} already succeeded (already migrated)."
    if state == "running":
        return f"Migration #{migration_id} is running: wait until it ends."
    return None


# --- the engine's decision -------------------------------------------------------------------------

@dataclass(frozen=True)
class Member:
    """One migration of a wave: its id, whether the wave started it, its migration's state now."""

    migration_id: int
    started: bool
    state: str  # not_started | running | error | success

    @property
    def shown(self) -> str:
        """How the wave counts it: not yet started by the wave → not_started, else its migration's state."""
        return self.state if self.started else "not_started"


@dataclass(frozen=True)
class Plan:
    start: list[int]  # migration ids to start now, in order
    final: WaveState | None  # the state the wave ends in now, if it ends


def counts(members: Iterable[Member]) -> dict[str, int]:
    found = {"not_started": 0, "running": 0, "success": 0, "error": 0}
    for m in members:
        found[m.shown] = found.get(m.shown, 0) + 1
    return found


def plan(members: list[Member], max_parallel: int, stop_on_error: bool) -> Plan:
    """What a running wave does now: start the next members (FIFO) while fewer than ``max_parallel`` run, none
    after an error with ``stop_on_error``; it ends when nothing runs and nothing more will start: ``done``
    when every member succeeded, ``failed`` otherwise."""
    started = [m for m in members if m.started]
    running = sum(1 for m in started if m.state == "running")
    errored = any(m.state == "error" for m in started)
    waiting = [m.migration_id for m in members if not m.started]
    start = [] if (errored and stop_on_error) else waiting[:max(0, max_parallel - running)]
    if running or start or (waiting and not (errored and stop_on_error)):
        return Plan(start, None)
    ok = not waiting and all(m.state == "success" for m in started)
    return Plan([], WaveState.DONE if ok else WaveState.FAILED)


def refusal_text(exc: DomainError) -> str:
    """Why a member could not be started, in one line: the refusal's message, with its fields' messages."""
    details = "; ".join(m for messages in exc.fields.values() for m in messages)
    if not details or details == exc.message:
        return exc.message[:1000]
    return (details if exc.message in ("", ValidationError().message) else f"{exc.message} ({details})")[:1000]
