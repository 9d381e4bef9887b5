"""Environment holds (issue 13): how long and why, in plain Python. A hold whose ``until`` has passed no
longer counts, whether or not the maintenance loop has cleared it yet."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from .errors import ValidationError

MIN_MINUTES, MAX_MINUTES, REASON_MAX = 1, 1440, 500
# A hold Cutover itself sets (a teardown failed or never ran): it lasts until an admin releases it, never expires
SYSTEM_HOLDER = "cutover"
UNTIL_RELEASED = datetime(9999, 1, 1, tzinfo=timezone.utc)


def check_minutes(value: Any) -> int:
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_MINUTES <= value <= MAX_MINUTES:
        raise ValidationError.single("minutes", f"Minutes must be a whole number from {MIN_MINUTES} to "
                                                f"{MAX_MINUTES}.")
    return value


def check_reason(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > REASON_MAX:
        raise ValidationError.single("reason", f"Reason must be 1 to {REASON_MAX} characters of text.")
    return value.strip()


def active(until: datetime | None, now: datetime) -> bool:
    """Does a hold ending at ``until`` still hold at ``now``?"""
    return until is not None and until > now


def until_released(until: datetime | None) -> bool:
    """A hold that only an admin's release ends (``UNTIL_RELEASED``), not the clock."""
    return until is not None and until >= UNTIL_RELEASED
