"""Shared form plumbing: forms carry no rules of their own; the services' errors are shown beside fields."""
from __future__ import annotations

from typing import Any, Callable

from flask_wtf import FlaskForm

from .domain.errors import DomainError, ValidationError
from .errors import refusal

# Refusals a page shows beside the form or the button (the rest, e.g. 403, 404, 503, get the error page).
SHOWN = (401, 409, 413, 422, 429)


class ServiceForm(FlaskForm):
    """A form whose validation is done by the service layer (the same rules as the JSON API).

    Subclasses turn themselves into the API's input shape with ``payload()`` and map the services'
    dotted error paths back onto their fields with ``FIELD_PATHS``.
    """

    FIELD_PATHS: dict[str, str] = {}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.form_errors: list[str] = []
        self.refused = False
        self.refused_status: int | None = None
        self.refused_headers: dict = {}

    def field_for(self, path: str):
        """The field showing errors of ``path``; ``variables.BASE_URL`` falls back to ``variables``'s."""
        head = path.split(".")[0]
        name = self.FIELD_PATHS.get(path) or self.FIELD_PATHS.get(head) or path
        return self._fields.get(name) or self._fields.get(name.split(".")[0])

    def show_errors(self, exc: ValidationError) -> None:
        self.refused = True
        for path, messages in exc.fields.items():
            field = self.field_for(path)
            if field is None:
                self.form_errors.extend(messages)
            else:
                field.errors = list(field.errors or []) + list(messages)
        if not exc.fields:
            self.form_errors.append(exc.message)


    def submit(self, action: Callable[[dict], Any]) -> Any:
        """Run ``action(payload)`` when the form was posted to save; on refusal, show why and return None."""
        if not self.is_submitted() or not self.wants_save():
            return None
        try:
            return action(self.payload())
        except ValidationError as exc:
            self.show_errors(exc)
        except DomainError as exc:  # e.g. a duplicate IP (409) or a file too large (413)
            refused = refusal(exc)
            if refused.status not in SHOWN:
                raise
            self.show_errors(ValidationError(refused.fields, refused.message))
            # a form answers 422 otherwise; a failed or throttled sign-in keeps its own status
            self.refused_status = refused.status if refused.status in (401, 413, 429) else None
            self.refused_headers = refused.headers
        return None

    def wants_save(self) -> bool:
        return True

    def payload(self) -> dict:
        raise NotImplementedError

    @property
    def status(self) -> int:
        return (self.refused_status or 422) if self.refused else 200


def clean_int(value: str | None):
    """Digits become an int; anything else is passed on as it is, for the service to refuse clearly."""
    value = (value or "").strip()
    return int(value) if value.isascii() and value.isdigit() else (value or None)


def attempt(action: Callable[..., Any], *args) -> str | None:
    """Run a state-changing action for a page: the refusal's message, or None when it went through."""
    try:
        action(*args)
    except DomainError as exc:  # e.g. a migration already running (409) or without C:\\ (422)
        if refusal(exc).status not in (409, 413, 422):
            raise  # no such record, no right to it, an unreadable secret: the error page
        return exc.message
    return None
