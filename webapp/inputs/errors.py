"""Collecting the messages of several fields before refusing them together; the body must be an object."""
from __future__ import annotations

from typing import Any, Mapping

from ..domain.errors import ValidationError


class Errors:
    """Collects messages from several parts before raising them together."""

    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        self.fields.setdefault(path, []).append(message)

    def absorb(self, exc: ValidationError, prefix: str = "") -> None:
        for key, messages in exc.fields.items():
            path = f"{prefix}.{key}" if prefix and key else (prefix or key)
            self.fields.setdefault(path, []).extend(messages)

    def raise_if_any(self) -> None:
        if self.fields:
            raise ValidationError(self.fields)


def object_of(data: Any, path: str, what: str) -> Mapping:
    if not isinstance(data, Mapping):
        raise ValidationError.single(path, f"{what} must be an object.")
    return data
