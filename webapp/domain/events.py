"""Events and their notifications: the rules, no Flask or SQL."""
from __future__ import annotations

import enum
from typing import Any

from .errors import InvalidTransition, ValidationError, check_all

USER_ID_MAX, DESCRIPTION_MAX = 128, 2000


class EventStatus(str, enum.Enum):
    PENDING = "pending"
    PROCESSED = "processed"
    FAILED = "failed"


class EventSource(str, enum.Enum):
    API = "api"
    MIGRATION = "migration"
    RUN = "run"
    WAVE = "wave"
    ENVIRONMENT = "environment"  # a hold expired


# pending → processed | failed, and failed → pending (which queues the event again)
TRANSITIONS = {
    EventStatus.PENDING: {EventStatus.PROCESSED, EventStatus.FAILED},
    EventStatus.FAILED: {EventStatus.PENDING},
    EventStatus.PROCESSED: set(),
}


def _text(value: Any, name: str, label: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError.single(name, f"{label} is required (text of 1 to {limit} characters).")
    if len(value) > limit:
        raise ValidationError.single(name, f"{label} must be at most {limit} characters.")
    return value


def check_user_id(value: Any) -> str:
    return _text(value, "user_id", "User id", USER_ID_MAX)


def check_description(value: Any) -> str:
    return _text(value, "description", "Description", DESCRIPTION_MAX)


def check_new(data: Any) -> dict:
    """``{"user_id", "description"}`` for a new event, both checked, errors together."""
    if not isinstance(data, dict):
        raise ValidationError.single("", "The body must be an object.")
    return check_all(data, (("user_id", check_user_id), ("description", check_description)))


def check_transition(current: EventStatus, wanted: Any) -> EventStatus:
    try:
        target = EventStatus(wanted)
    except ValueError:
        raise ValidationError.single("status", "Status must be pending, processed or failed.") from None
    if target is not current and target not in TRANSITIONS[current]:
        raise InvalidTransition(f"An event cannot go from {current.value} to {target.value}.")
    return target


def notification_line(event_id: str, user_id: str, description: str) -> str:
    """The notification log's line for one delivery (one line: line breaks are written as \\n)."""
    flat = description.replace("\r", "\\r").replace("\n", "\\n")
    return f"Event {event_id} has been sent to {user_id}: {flat}"
