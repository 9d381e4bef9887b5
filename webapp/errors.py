"""Errors as users see them: one JSON body shape under /api/, friendly pages elsewhere."""
from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from sqlalchemy.exc import DataError
from werkzeug.exceptions import HTTPException

from .domain.errors import DomainError, ImmutableFieldError, InvalidStateError, SystemVolumeRequired, ValidationError
from .domain.events import InvalidTransition
from .domain.testfiles import UploadTooLarge

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error with an HTTP status and a snake_case code, for the API and the pages alike."""

    def __init__(self, status: int, code: str, message: str, fields: dict | None = None,
                 headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or {}
        self.headers = headers or {}


class NotFound(ApiError):
    def __init__(self, what: str = "resource"):
        super().__init__(404, "not_found", f"No such {what}.")


class Unauthorized(ApiError):
    def __init__(self, message: str = "Sign in first: send 'Authorization: Bearer <token>'."):
        super().__init__(401, "unauthorized", message, headers={"WWW-Authenticate": 'Bearer realm="cutover"'})


class Forbidden(ApiError):
    def __init__(self, message: str = "Your role may not do this."):
        super().__init__(403, "forbidden", message)


class Throttled(ApiError):
    def __init__(self, seconds: int):
        super().__init__(429, "too_many_attempts", f"Too many failed sign-ins: try again in {seconds} s.",
                         headers={"Retry-After": str(seconds)})
        self.seconds = seconds


class Conflict(ApiError):
    def __init__(self, code: str, message: str, fields: dict | None = None):
        super().__init__(409, code, message, fields)


def from_domain(exc: Exception) -> ApiError:
    """Map a domain error onto its API error."""
    if isinstance(exc, ImmutableFieldError):
        return ApiError(422, "immutable_field", exc.message, exc.fields)
    if isinstance(exc, ValidationError):
        return ApiError(422, "validation_error", exc.message, exc.fields)
    if isinstance(exc, SystemVolumeRequired):
        return ApiError(422, "system_volume_required", str(exc), {"selected_mount_points": [str(exc)]})
    if isinstance(exc, InvalidTransition):
        return ApiError(409, "invalid_transition", str(exc), {"status": [str(exc)]})
    if isinstance(exc, UploadTooLarge):
        return ApiError(413, "too_large", str(exc), {"file": [str(exc)]})
    if isinstance(exc, InvalidStateError):
        return ApiError(409, "invalid_state", str(exc))
    raise exc


def _snake(name: str) -> str:
    return name.lower().replace(" ", "_").replace("-", "_")


def error_body(status: int, code: str, message: str, fields: dict | None = None):
    return jsonify({"error": {"code": code, "message": message, "fields": fields or {}}}), status


def _is_api() -> bool:
    return request.path.startswith("/api/")


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        if _is_api():
            response, status = error_body(exc.status, exc.code, exc.message, exc.fields)
        else:
            response, status = render_template("error.html", status=exc.status, message=exc.message), exc.status
        return response, status, exc.headers

    @app.errorhandler(DomainError)
    def _domain_error(exc: DomainError):
        return _api_error(from_domain(exc))

    @app.errorhandler(DataError)
    def _unstorable(exc: DataError):
        from .extensions import db

        db.session.rollback()
        log.warning("refused unstorable input on %s: %s", request.path, exc.orig)
        return _api_error(ApiError(422, "validation_error",
                                   "A value is too long or contains characters that cannot be stored."))

    from .extensions import VaultKeyError

    @app.errorhandler(VaultKeyError)
    def _unreadable_secret(exc: VaultKeyError):  # the operator's key setting, not the user's input
        log.error("%s on %s %s", exc, request.method, request.path)
        return _api_error(ApiError(503, "secret_unreadable", f"{exc} Ask the operator: the stored passwords need "
                                                             "the key they were encrypted with."))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if _is_api():
            codes = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large",
                     415: "unsupported_media_type"}
            response, status = error_body(exc.code, codes.get(exc.code, _snake(exc.name)), exc.description or exc.name)
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
