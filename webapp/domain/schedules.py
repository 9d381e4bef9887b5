"""Schedules: a test run started at every due time of a 5-field cron expression, read in UTC.

The rules in plain Python (no Flask, no SQL): the input's fields, ``next_due`` (the first due time after a
moment), and ``fire``, the maintenance loop's one decision for a due schedule: whether to start a run now or
skip this due time (the schedule's previous run still waits), and the next due time. A schedule that missed
many due times while everything was down starts ONE run: the next due time jumps past now, never a burst.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from croniter import croniter

from .errors import ValidationError
from .pools import check_label

NAME_MAX = 128
CRON_MAX = 128
PRIORITIES = ("normal", "high")
RECENT_RUNS = 10  # run ids a schedule's JSON and page show


def _utc(moment: datetime) -> datetime:
    """Aware UTC (a naive moment is taken as UTC)."""
    return moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def check_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError.single("name", "Give the schedule a name.")
    if len(value.strip()) > NAME_MAX:
        raise ValidationError.single("name", f"At most {NAME_MAX} characters.")
    return value.strip()


def check_cron(value: Any) -> str:
    """Five fields (minute hour day-of-month month day-of-week), read in UTC; e.g. ``*/15 * * * *``."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError.single("cron", "Give a cron expression of 5 fields, e.g. '0 2 * * *' (UTC).")
    text = " ".join(value.split())
    if len(text) > CRON_MAX:
        raise ValidationError.single("cron", f"At most {CRON_MAX} characters.")
    if len(text.split(" ")) != 5:
        raise ValidationError.single(
            "cron", f"A cron expression has exactly 5 fields (minute hour day month weekday); "
                    f"this one has {len(text.split(' '))}.")
    if not croniter.is_valid(text):
        raise ValidationError.single("cron", f"'{text}' is not a valid cron expression, e.g. '*/15 * * * *'.")
    try:
        next_due(text, datetime(2000, 1, 1))
    except Exception:  # e.g. '0 0 30 2 *': never due
        raise ValidationError.single("cron", f"'{text}' is never due.") from None
    return text


def check_priority(value: Any) -> str:
    if value not in PRIORITIES:
        raise ValidationError.single("priority", f"Choose one of: {', '.join(PRIORITIES)}.")
    return value


def check_enabled(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValidationError.single("enabled", "true or false.")
    return value


def check_pool(value: Any) -> str | None:
    """A pool's label (``domain.pools``), or None: the schedule names an environment instead."""
    return None if value is None else check_label(value)


def next_due(cron: str, after: datetime) -> datetime:
    """The first due time strictly after ``after``, in aware UTC (as stored)."""
    return _utc(croniter(cron, _utc(after)).get_next(datetime))


@dataclass(frozen=True)
class Firing:
    """What to do at a due schedule: ``start`` a run (else skip, counted), ``due`` the due time handled,
    ``next_due_at`` the first due time after now."""

    start: bool
    due: datetime
    next_due_at: datetime


def fire(cron: str, due_at: datetime, now: datetime, previous_waits: bool) -> Firing:
    """A schedule with ``due_at <= now``: one run, or a skip when its previous run is still queued; however
    many due times passed, the next one is the first after ``now`` (no burst after downtime)."""
    return Firing(start=not previous_waits, due=due_at, next_due_at=next_due(cron, now))
