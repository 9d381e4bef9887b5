"""A hold's body → checked values: every field's errors at once (``minutes``, ``reason``)."""
from __future__ import annotations

from typing import Any

from ..domain import holds
from ..domain.errors import ValidationError
from .errors import Errors, object_of

FIELDS = (("minutes", holds.check_minutes), ("reason", holds.check_reason))


def hold(data: Any) -> dict:
    """``{"minutes": 1..1440, "reason": "<1..500 characters>"}``; any other field is refused."""
    data = object_of(data, "", "The body")
    errors, clean = Errors(), {}
    for name, check in FIELDS:
        try:
            clean[name] = check(data.get(name))
        except ValidationError as exc:
            errors.absorb(exc)
    for name in sorted(set(data) - {n for n, _ in FIELDS}):
        errors.add(name, "Unknown field.")
    errors.raise_if_any()
    return clean
