"""Domain errors, a flat list."""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping


class DomainError(Exception):
    """A rule of the domain was broken."""


class ValidationError(DomainError):
    """Input that breaks a rule, with messages keyed by the dotted path of the offending field."""

    def __init__(self, fields: dict[str, list[str]] | None = None, message: str = "Some fields are invalid."):
        super().__init__(message)
        self.message = message
        self.fields: dict[str, list[str]] = fields or {}

    @classmethod
    def single(cls, path: str, message: str) -> "ValidationError":
        return cls({path: [message]}, message)

    def prefixed(self, prefix: str) -> "ValidationError":
        """The same error with every field path placed under ``prefix``."""
        return ValidationError({f"{prefix}.{k}" if k else prefix: v for k, v in self.fields.items()}, self.message)


def check_all(data: Mapping[str, Any], checks: Iterable[tuple[str, Callable[[Any], Any]]],
              only_given: bool = False) -> dict[str, Any]:
    """Run each ``(field, check)`` on ``data[field]`` and raise every field's messages together.
    ``only_given``: skip fields the input leaves out (a partial update)."""
    fields: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    for name, check in checks:
        if only_given and name not in data:
            continue
        try:
            clean[name] = check(data.get(name))
        except ValidationError as exc:
            fields.update(exc.fields)
    if fields:
        raise ValidationError(fields)
    return clean


class ImmutableFieldError(ValidationError):
    """A field that may never change was given a new value."""


class InvalidStateError(DomainError):
    """The operation is not allowed in the object's current state."""


class SystemVolumeRequired(DomainError):
    """A migration must include the system volume C:\\."""
