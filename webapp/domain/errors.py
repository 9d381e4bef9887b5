"""Every error the app raises on purpose, a flat list (rq's ``exceptions.py`` idea): plain Python, no Flask.

Each carries a ``message`` for people and ``fields`` (messages keyed by the dotted path of a field) for forms and
the API, and may carry ``extra``: more members of the API's error object (e.g. the failed ``checks`` of a preflight). ``webapp.errors.ERRORS`` gives every class here its HTTP status and error code, one table for the API and
the pages; a ``Conflict`` names its own code.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping


class DomainError(Exception):
    """The base: a request the app refuses (a broken rule, a missing record, a refused caller...)."""

    code: str | None = None  # a more precise error code than the table's, for this instance

    def __init__(self, message: str = "", fields: dict[str, list[str]] | None = None,
                 extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.fields: dict[str, list[str]] = fields or {}
        self.extra: dict[str, Any] = extra or {}  # merged into the API's error object, beside code/message/fields


class BadJson(DomainError):
    """The request body is not the JSON document the API expects."""


class Unauthorized(DomainError):
    """The caller is not signed in (or its credentials are wrong)."""

    def __init__(self, message: str = "Sign in first: send 'Authorization: Bearer <token>'."):
        super().__init__(message)


class Forbidden(DomainError):
    """The caller may not do this."""

    def __init__(self, message: str = "Your role may not do this."):
        super().__init__(message)


class ReadOnly(Forbidden):
    """Nobody may change this (e.g. the shipped sample tests)."""


class NotFound(DomainError):
    """No such record."""

    def __init__(self, what: str = "resource"):
        super().__init__(f"No such {what}.")
        self.what = what


class Conflict(DomainError):
    """The request conflicts with what is stored; ``code`` says how (``duplicate_ip``, ``in_use``...)."""

    def __init__(self, code: str, message: str, fields: dict[str, list[str]] | None = None):
        super().__init__(message, fields)
        self.code = code


class InvalidStateError(Conflict):
    """The operation is not allowed in the object's current state."""

    def __init__(self, message: str, fields: dict[str, list[str]] | None = None):
        super().__init__("invalid_state", message, fields)


class InvalidTransition(Conflict):
    """A status change the event's life does not allow (or an edit its status no longer allows)."""

    def __init__(self, message: str, fields: dict[str, list[str]] | None = None):
        super().__init__("invalid_transition", message, fields if fields is not None else {"status": [message]})


class UploadTooLarge(DomainError):
    """The uploaded file is over the size limit."""

    def __init__(self, message: str):
        super().__init__(message, {"file": [message]})


class UnsupportedMediaType(DomainError):
    """The request body is of a type the endpoint does not take."""


class ValidationError(DomainError):
    """Input that breaks a rule, with messages keyed by the dotted path of the offending field."""

    def __init__(self, fields: dict[str, list[str]] | None = None, message: str = "Some fields are invalid."):
        super().__init__(message, fields)

    @classmethod
    def single(cls, path: str, message: str) -> "ValidationError":
        return cls({path: [message]}, message)

    def prefixed(self, prefix: str) -> "ValidationError":
        """The same error with every field path placed under ``prefix``."""
        return ValidationError({f"{prefix}.{k}" if k else prefix: v for k, v in self.fields.items()}, self.message)


class ImmutableFieldError(ValidationError):
    """A field that may never change was given a new value."""


class SystemVolumeRequired(DomainError):
    """A migration must include the system volume C:\\."""

    def __init__(self, message: str):
        super().__init__(message, {"selected_mount_points": [message]})


class PreflightFailed(DomainError):
    """A run refused by its preflight checks; the migration is left as it was. ``checks``: the failed ones
    (``{"name", "ok", "message"}``), also listed in the API's error object."""

    def __init__(self, checks: list[dict[str, Any]]):
        super().__init__("Preflight failed: " + " ".join(c["message"] for c in checks), extra={"checks": checks})
        self.checks = checks


class Throttled(DomainError):
    """Too many failed sign-ins: try again in ``seconds``."""

    def __init__(self, seconds: int):
        super().__init__(f"Too many failed sign-ins: try again in {seconds} s.")
        self.seconds = seconds


class VaultKeyError(DomainError, RuntimeError):
    """A stored secret cannot be read with any key of ``CREDENTIALS_KEY``: the operator's setting, not the input
    (so also a RuntimeError, as it always was). ``str()`` is the reason (as a migration's error records it);
    ``message`` adds what to do about it."""

    def __init__(self, reason: str = "A stored secret cannot be read: was CREDENTIALS_KEY changed?"):
        super().__init__(reason)
        self.message = f"{reason} Ask the operator: the stored passwords need the key they were encrypted with."


# --- checking many fields at once -------------------------------------------------------------------

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
