"""The whole document: who may call what (the roles of ``webapp.auth``), the meta paths, the assembly."""
from __future__ import annotations

import copy
from functools import lru_cache

from ...domain.accounts import ANONYMOUS, Role
from ...version import VERSION
from .builders import HTML, JSON, error, errors, ok, operation, ref, string
from .compare import compare_paths, compare_schemas
from .imports import import_paths
from .pools import amend_paths, amend_schemas
from .holds import hold_paths, hold_schemas
from .queueing import queue_paths, queue_schemas
from .stages import amend_environment_schemas, stage_schemas
from .operations import (_account_paths, _environment_paths, _event_paths, _migration_paths, _run_paths,
                         _test_file_paths, _workload_paths)
from .shapes import schemas
from .testhistory import test_paths, test_schemas
from .waves import wave_paths, wave_schemas
from .schedules import schedule_paths, schedule_schemas


# --- who may call what (webapp.auth): GETs need a viewer, other methods an operator, except these ----

ROLES: dict[str, Role | str] = {
    "ping": ANONYMOUS, "readyz": ANONYMOUS, "openapi": ANONYMOUS, "docs": ANONYMOUS,
    "createToken": Role.VIEWER, "revokeToken": Role.VIEWER,
    "updateEnvironment": Role.ADMIN, "unlockEnvironment": Role.ADMIN,
    "listUsers": Role.ADMIN, "createUser": Role.ADMIN, "getUser": Role.ADMIN, "updateUser": Role.ADMIN,
    "listAudit": Role.ADMIN,
}
BASIC_AUTH = {"createToken"}  # also takes HTTP Basic (throttled)
BODY_METHODS = ("post", "put", "patch")
WWW_AUTHENTICATE = {"description": 'Always `Bearer realm="cutover"`.', "required": True, "schema": string()}
RETRY_AFTER = {"description": "Seconds to wait.", "required": True, "schema": string(pattern="^[0-9]+$")}

SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "cut_…",
                   "description": "An API token: `Authorization: Bearer <token>`. Create one with "
                                  "POST /api/v1/tokens (or on your account page); it acts with its own role, "
                                  "never more than its owner's."},
    "basicAuth": {"type": "http", "scheme": "basic",
                  "description": "`username:password`, only for POST /api/v1/tokens (a script's first token). "
                                 "Five failures a minute per username or address answer 429."},
}


def role_of(method: str, op: dict) -> Role | str:
    return ROLES.get(op["operationId"], Role.VIEWER if method == "get" else Role.OPERATOR)


def _secure(path: str, method: str, op: dict) -> None:
    """The security requirement and the 401/403/415/429 answers of one operation, from its role."""
    role = role_of(method, op)
    op["x-role"] = getattr(role, "value", role)
    responses = op["responses"]
    if role == ANONYMOUS:
        op["security"] = []
    elif op["operationId"] in BASIC_AUTH:
        op["security"] = [{"bearerAuth": []}, {"basicAuth": []}]
        responses.update(errors(401, 429, t401="No valid token, or a wrong username or password (`unauthorized`)."))
        responses["429"]["headers"] = {"Retry-After": RETRY_AFTER}
    else:
        responses.update(errors(401))
    if "401" in responses:
        responses["401"]["headers"] = {"WWW-Authenticate": WWW_AUTHENTICATE}
    if role not in (ANONYMOUS, Role.VIEWER):
        if "403" in responses:
            code = responses["403"]["content"][JSON]["schema"]["allOf"][1]["properties"]["error"]["properties"]["code"]
            code["enum"] = list(dict.fromkeys(code["enum"] + ["forbidden"]))
        else:
            responses.update(errors(403, t403=f"This needs the {role.value} role (`forbidden`)."))
    if role != ANONYMOUS and method in BODY_METHODS:
        media = next(iter(op["requestBody"]["content"])) if "requestBody" in op else JSON
        responses.update(errors(415, t415=f"A body that is not {media} (`unsupported_media_type`)."
                                + ("" if "requestBody" in op else " This operation takes none: send no body.")))
    op["responses"] = dict(sorted(responses.items()))


def _meta_paths() -> dict:
    return {
        "/ping": {"get": operation("ping", "meta", "Liveness", {"200": ok("Up.", ref("Ping"))})},
        "/readyz": {"get": operation("readyz", "meta", "Readiness", {
            "200": ok("Ready: every check is `ok`.", ref("Readiness")),
            "503": ok("Not ready: each failing check says why instead of `ok`.", ref("Readiness"))},
            description="May this process take traffic? The database and Redis answer (about 1 s each), the "
                        "schema is at the newest revision and a worker heartbeated lately.")},
        "/metrics": {"get": operation("metrics", "meta", "Prometheus metrics", {
            "200": ok("The Prometheus text format (0.0.4).", string(), "text/plain")},
            description="Read at each scrape from the database and Redis: RQ queue depth, workers alive, runs, "
                        "migrations and events by state, busy environments, waiting runs and the oldest wait per "
                        "environment, webhook failures, recent run durations and waits. Any viewer's API token, "
                        "or the `METRICS_TOKEN` setting as the Bearer token.")},
        "/api/openapi.json": {"get": operation("openapi", "meta", "This document", {
            "200": ok("OpenAPI 3.1.", {"type": "object"})})},
        "/api/docs": {"get": operation("docs", "meta", "This document as a page", {
            "200": ok("HTML.", string(), HTML)})},
    }


INFO_DESCRIPTION = (
    "JSON in and out, no CSRF token needed. Every call but /ping, /readyz, /api/openapi.json and /api/docs needs "
    "`Authorization: Bearer <token>` (else 401 `unauthorized`, with `WWW-Authenticate`); each operation "
    "needs a role (viewer < operator < admin; too low: 403 `forbidden`). POST, PUT and PATCH bodies are "
    "`application/json` (uploads: `multipart/form-data`; the bulk import also takes `text/csv`); any other type is refused (415 "
    "`unsupported_media_type`). Every error has the body "
    '`{"error": {"code", "message", "fields": {"<path>": ["<message>"]}}}`. '
    "A method a path does not offer answers 405 `method_not_allowed` (with `Allow`). Every answer carries "
    "`X-Request-ID`: the one sent (1..128 of `A-Za-z0-9._-`), else a new one; the logs of the request and "
    "of the jobs it queued carry it too."
)


@lru_cache(maxsize=1)
def _document() -> dict:
    paths: dict = {}
    for part in (_meta_paths, _workload_paths, import_paths, _migration_paths, wave_paths, schedule_paths, _run_paths,
                 compare_paths, test_paths, _test_file_paths, _environment_paths, hold_paths, queue_paths,
                 _event_paths,
                 _account_paths):
        paths.update(part())
    amend_paths(paths)
    for path, item in paths.items():
        for method, op in item.items():
            _secure(path, method, op)
    all_schemas = {**schemas(), **wave_schemas(), **schedule_schemas(), **compare_schemas(), **test_schemas(),
                   **hold_schemas(), **queue_schemas(), **stage_schemas()}
    amend_schemas(all_schemas)
    amend_environment_schemas(all_schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Cutover API", "version": VERSION, "description": INFO_DESCRIPTION},
        "servers": [{"url": "/"}],
        "tags": [{"name": t} for t in ("workloads", "migrations", "waves", "schedules", "runs", "tests", "test files",
                                       "environments", "events", "accounts", "audit", "meta")],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": SECURITY_SCHEMES,
            "schemas": all_schemas,
            "responses": {"MethodNotAllowed": error(
                405, ["method_not_allowed"], "The path does not offer this method (`Allow` lists those it does).")},
        },
    }


def document() -> dict:
    """The OpenAPI 3.1 document (a fresh copy: callers may change it)."""
    return copy.deepcopy(_document())
