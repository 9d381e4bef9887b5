"""Pools and priorities (issue 13), in plain Python: environment labels, what a run may ask for, and the
one rule that orders waiting runs.

The rule: when an environment is free, it goes to the first of the runs that could use it (runs for that
exact environment, and pool runs whose label the environment carries), ordered by effective priority and
then by creation (id). A ``normal`` run that has waited longer than the aging time counts as ``high``, so
no run waits forever while later runs that could use the same environment start.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, Iterable

from .errors import ValidationError

LABEL = re.compile(r"[a-z0-9_-]{1,32}")
MAX_LABELS = 10
NORMAL, HIGH = "normal", "high"
PRIORITIES = (NORMAL, HIGH)
LABEL_RULE = "lower-case letters, digits, '_' or '-', 1 to 32 of them"


def check_label(value: Any, field: str = "pool") -> str:
    if not isinstance(value, str) or not LABEL.fullmatch(value):
        raise ValidationError.single(field, f"A label is {LABEL_RULE}.")
    return value


def check_labels(value: Any) -> list[str]:
    """0–10 distinct labels, in the order given. A string is split on commas and spaces (the form)."""
    if isinstance(value, str):
        value = [part for part in re.split(r"[\s,]+", value.strip()) if part]
    if not isinstance(value, list):
        raise ValidationError.single("labels", "Labels must be a list of labels.")
    labels: list[str] = []
    for item in value:
        label = check_label(item, "labels")
        if label not in labels:
            labels.append(label)
    if len(labels) > MAX_LABELS:
        raise ValidationError.single("labels", f"An environment has at most {MAX_LABELS} labels.")
    return labels


def check_priority(value: Any) -> str:
    if value is None:
        return NORMAL
    if value not in PRIORITIES:
        raise ValidationError.single("priority", f"Priority must be one of: {', '.join(PRIORITIES)}.")
    return value


def aged_before(now: datetime, aging_minutes: float) -> datetime:
    """A normal run created before this instant counts as high."""
    return now - timedelta(minutes=aging_minutes)


def counts_as_high(priority: str, created_at: datetime, now: datetime, aging_minutes: float) -> bool:
    return priority == HIGH or created_at < aged_before(now, aging_minutes)


def can_use(run_environment_id: int | None, run_pool: str | None, environment_id: int,
            labels: Iterable[str]) -> bool:
    """Could this waiting run start on that environment?"""
    if run_pool is not None:
        return run_pool in set(labels)
    return run_environment_id == environment_id


def order_key(run_id: int, priority: str, created_at: datetime, now: datetime, aging_minutes: float) -> tuple:
    """Sort key of waiting runs: the smallest starts first."""
    return (0 if counts_as_high(priority, created_at, now, aging_minutes) else 1, run_id)
