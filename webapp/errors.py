"""Errors as users see them: one table from each exception of ``domain.errors`` to its HTTP status and error
code, used by the API (one JSON body shape under /api/) and the pages (friendly error pages, form refusals)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

from flask import Flask, jsonify, render_template, request
from sqlalchemy.exc import DataError
from werkzeug.exceptions import HTTPException

from .domain.errors import (BadJson, Conflict, DomainError, Forbidden, ImmutableFieldError, InvalidStateError,
                            InvalidTransition, NotFound, PreflightFailed, ReadOnly, SystemVolumeRequired, Throttled,
                            Unauthorized, UnsupportedMediaType, UploadTooLarge, ValidationError, VaultKeyError)

log = logging.getLogger(__name__)

# Every class of domain.errors (a test checks): its HTTP status and error code. A Conflict names its own code
# (duplicate_ip, duplicate_username, in_use, file_exists, ...); the class's is the table's otherwise.
ERRORS: dict[type[DomainError], tuple[int, str]] = {
    DomainError: (400, "bad_request"),
    BadJson: (400, "bad_json"),
    Unauthorized: (401, "unauthorized"),
    Forbidden: (403, "forbidden"),
    ReadOnly: (403, "read_only"),
    NotFound: (404, "not_found"),
    Conflict: (409, "conflict"),
    InvalidStateError: (409, "invalid_state"),
    InvalidTransition: (409, "invalid_transition"),
    UploadTooLarge: (413, "too_large"),
    UnsupportedMediaType: (415, "unsupported_media_type"),
    ValidationError: (422, "validation_error"),
    ImmutableFieldError: (422, "immutable_field"),
    SystemVolumeRequired: (422, "system_volume_required"),
    PreflightFailed: (422, "preflight_failed"),
    Throttled: (429, "too_many_attempts"),
    VaultKeyError: (503, "secret_unreadable"),
}

# The headers a refusal of that class carries, on the API and the pages alike.
HEADERS: dict[type[DomainError], Callable[[DomainError], dict[str, str]]] = {
    Unauthorized: lambda exc: {"WWW-Authenticate": 'Bearer realm="cutover"'},
    Throttled: lambda exc: {"Retry-After": str(exc.seconds)},
}

# Werkzeug's own errors (routing, body size...) under /api/: their error code by status.
HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large",
              415: "unsupported_media_type"}


@dataclass(frozen=True)
class Refusal:
    """How a refused request is answered."""

    status: int
    code: str
    message: str
    fields: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # more members of the API's error object (e.g. ``checks``)


def _nearest(table: dict, exc: DomainError):
    return next((table[cls] for cls in type(exc).__mro__ if cls in table), None)


def refusal(exc: DomainError) -> Refusal:
    """The status, code, message, fields and headers of a refused request, from the table."""
    status, code = _nearest(ERRORS, exc)
    headers = _nearest(HEADERS, exc)
    return Refusal(status, exc.code or code, exc.message, exc.fields, headers(exc) if headers else {}, exc.extra)


def _snake(name: str) -> str:
    return name.lower().replace(" ", "_").replace("-", "_")


def error_body(status: int, code: str, message: str, fields: dict | None = None, extra: dict | None = None):
    """The API's one error shape; ``extra`` adds members (never replacing code, message or fields)."""
    body = {"code": code, "message": message, "fields": fields or {}}
    return jsonify({"error": {**(extra or {}), **body}}), status


def _is_api() -> bool:
    from .auth import token_path

    return token_path(request.path)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _refused(exc: DomainError):
        answer = refusal(exc)
        if answer.status >= 500:  # the operator's setting (e.g. the credentials key), not the user's input
            log.error("%s on %s %s", exc, request.method, request.path)
        if _is_api():
            response, status = error_body(answer.status, answer.code, answer.message, answer.fields, answer.extra)
        else:
            response, status = render_template("error.html", status=answer.status, message=answer.message), \
                answer.status
        return response, status, answer.headers

    @app.errorhandler(DataError)
    def _unstorable(exc: DataError):
        from .extensions import db

        db.session.rollback()
        log.warning("refused unstorable input on %s: %s", request.path, exc.orig)
        return _refused(ValidationError(message="A value is too long or contains characters that cannot be stored."))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if _is_api():
            response, status = error_body(exc.code, HTTP_CODES.get(exc.code, _snake(exc.name)),
                                          exc.description or exc.name)
            if exc.code == 405 and exc.valid_methods:
                response.headers["Allow"] = ", ".join(exc.valid_methods)
            return response, status
        return render_template("error.html", status=exc.code, message=exc.description), exc.code

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("Unhandled error on %s %s", request.method, request.path)
        message = "Something went wrong on our side; it has been logged."
        if _is_api():
            return error_body(500, "internal_error", message)
        return render_template("error.html", status=500, message=message), 500
