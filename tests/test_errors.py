"""One error hierarchy: every exception the app raises on purpose lives in the flat module webapp.domain.errors,
and one table (webapp.errors.ERRORS) gives each its HTTP status and error code, for the API and the pages."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from markupsafe import escape

from conftest import ADMIN, client_as

from webapp import errors
from webapp.domain import errors as flat
from webapp.domain.errors import (BadJson, Conflict, DomainError, Forbidden, ImmutableFieldError, InvalidStateError,
                                  InvalidTransition, NotFound, PreflightFailed, ReadOnly, SystemVolumeRequired,
                                  Throttled, Unauthorized, UnsupportedMediaType, UploadTooLarge, ValidationError,
                                  VaultKeyError)

ROOT = Path(__file__).resolve().parent.parent
BEARER = {"WWW-Authenticate": 'Bearer realm="cutover"'}
UNREADABLE = "A stored secret cannot be read: was CREDENTIALS_KEY changed?"

# (an instance as the app raises it, status, code, fields, headers): what the API and the pages answered before
# the hierarchy was unified.
CASES = {
    DomainError: (DomainError("Refused."), 400, "bad_request", {}, {}),
    BadJson: (BadJson("The request body must be a JSON object."), 400, "bad_json", {}, {}),
    Unauthorized: (Unauthorized(), 401, "unauthorized", {}, BEARER),
    Forbidden: (Forbidden(), 403, "forbidden", {}, {}),
    ReadOnly: (ReadOnly("Shipped sample tests are read-only."), 403, "read_only", {}, {}),
    NotFound: (NotFound("migration"), 404, "not_found", {}, {}),
    Conflict: (Conflict("duplicate_ip", "Taken.", {"ip": ["Taken."]}), 409, "duplicate_ip", {"ip": ["Taken."]}, {}),
    InvalidStateError: (InvalidStateError("A running migration cannot be deleted."), 409, "invalid_state", {}, {}),
    InvalidTransition: (InvalidTransition("No way."), 409, "invalid_transition", {"status": ["No way."]}, {}),
    UploadTooLarge: (UploadTooLarge("Too big."), 413, "too_large", {"file": ["Too big."]}, {}),
    UnsupportedMediaType: (UnsupportedMediaType("Send JSON.", {"Content-Type": ["Must be JSON."]}), 415,
                           "unsupported_media_type", {"Content-Type": ["Must be JSON."]}, {}),
    ValidationError: (ValidationError.single("ip", "Bad IP."), 422, "validation_error", {"ip": ["Bad IP."]}, {}),
    ImmutableFieldError: (ImmutableFieldError.single("ip", "Never."), 422, "immutable_field", {"ip": ["Never."]}, {}),
    SystemVolumeRequired: (SystemVolumeRequired("C:\\ please."), 422, "system_volume_required",
                           {"selected_mount_points": ["C:\\ please."]}, {}),
    PreflightFailed: (PreflightFailed([{"name": "volumes", "ok": False, "message": "D:\\ is gone."}]), 422,
                      "preflight_failed", {}, {}),
    Throttled: (Throttled(7), 429, "too_many_attempts", {}, {"Retry-After": "7"}),
    VaultKeyError: (VaultKeyError(), 503, "secret_unreadable", {}, {}),
}


def classes_of(module) -> set[type]:
    return {obj for _, obj in inspect.getmembers(module, inspect.isclass)
            if issubclass(obj, BaseException) and obj.__module__ == module.__name__}


def test_the_one_table_covers_every_exception_of_the_flat_module_and_nothing_else():
    found = classes_of(flat)
    assert found and found == set(errors.ERRORS), found ^ set(errors.ERRORS)
    assert found == set(CASES)
    assert all(issubclass(cls, DomainError) for cls in found)  # one handler answers them all


@pytest.mark.parametrize("cls", list(CASES), ids=lambda cls: cls.__name__)
def test_each_class_maps_to_its_status_code_and_headers(cls):
    exc, status, code, fields, headers = CASES[cls]
    answer = errors.refusal(exc)
    assert (answer.status, answer.code, answer.fields, answer.headers) == (status, code, fields, headers)
    assert answer.message == exc.message


def test_a_409_is_a_conflict_whatever_its_code():
    assert all(issubclass(cls, Conflict) for cls in (InvalidStateError, InvalidTransition))
    assert InvalidStateError("x").code == "invalid_state" and InvalidTransition("x").code == "invalid_transition"


def test_an_unreadable_secret_keeps_its_reason_and_tells_what_to_do():
    exc = VaultKeyError()
    assert isinstance(exc, RuntimeError)  # as it always was
    assert str(exc) == UNREADABLE  # what a migration's error records
    assert exc.message == f"{UNREADABLE} Ask the operator: the stored passwords need the key they were encrypted with."


def test_nothing_but_the_flat_module_defines_an_error_a_request_sees():
    """Services raise domain exceptions only: no HTTP error class left anywhere, none defined outside the module."""
    offenders = []
    for path in sorted((ROOT / "webapp").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if re.search(r"\bApiError\b|\bfrom_domain\b", text):
            offenders.append(f"{path.relative_to(ROOT)}: an HTTP error class")
        if path != ROOT / "webapp" / "domain" / "errors.py" and re.search(r"^class \w+\((\w+\.)?(DomainError|"
                                                                          + "|".join(c.__name__ for c in CASES)
                                                                          + r")\)", text, re.M):
            offenders.append(f"{path.relative_to(ROOT)}: an error class outside domain/errors.py")
    assert offenders == []


@pytest.fixture
def probe(app):
    """Routes that raise each case's exception, under /api/ and as a page, for a signed-in admin."""
    from webapp.auth import viewer

    def raise_case(name: str):
        raise CASES[getattr(flat, name)][0]

    app.add_url_rule("/api/v1/probe-error/<name>", "probe_api", viewer(raise_case))
    app.add_url_rule("/probe-error/<name>", "probe_page", viewer(raise_case))
    return client_as(app, ADMIN)


@pytest.mark.parametrize("cls", list(CASES), ids=lambda cls: cls.__name__)
def test_the_api_and_the_pages_answer_from_the_same_table(probe, cls):
    exc, status, code, fields, headers = CASES[cls]
    api = probe.get(f"/api/v1/probe-error/{cls.__name__}")
    assert api.status_code == status
    assert api.json == {"error": {"code": code, "message": exc.message, "fields": fields, **exc.extra}}
    page = probe.get(f"/probe-error/{cls.__name__}")
    assert page.status_code == status and page.mimetype == "text/html"
    assert str(escape(exc.message)) in page.get_data(as_text=True)
    for response in (api, page):
        assert {k: response.headers.get(k) for k in headers} == headers


def test_extra_members_join_the_api_error_object_but_never_replace_its_own(app):
    exc = PreflightFailed([{"name": "volumes", "ok": False, "message": "D:\\ is gone."}])
    assert exc.extra == {"checks": exc.checks} and errors.refusal(exc).extra == exc.extra
    assert DomainError("x").extra == {}  # the rest carry nothing more
    with app.test_request_context():
        response, status = errors.error_body(422, "preflight_failed", "Refused.", {},
                                             {"code": "other", "message": "no", "fields": {"a": ["b"]}, "checks": []})
    assert status == 422
    assert response.json == {"error": {"code": "preflight_failed", "message": "Refused.", "fields": {}, "checks": []}}
