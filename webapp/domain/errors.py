"""Domain errors, a flat list."""
from __future__ import annotations


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


class ImmutableFieldError(ValidationError):
    """A field that may never change was given a new value."""


class InvalidStateError(DomainError):
    """The operation is not allowed in the object's current state."""


class SystemVolumeRequired(DomainError):
    """A migration must include the system volume C:\\."""
