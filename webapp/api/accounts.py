"""JSON endpoints for accounts, API tokens and the audit log."""
from __future__ import annotations

from flask import request, url_for

from .. import inputs
from ..accounts import services as accounts
from ..accounts import tokens
from ..audit import services as audit
from ..auth import admin, principal, viewer
from ..auth import access
from ..domain.accounts import Role
from . import bp
from .helpers import created, json_body, no_content


@bp.get("/v1/me")
@viewer
def me():
    return {**accounts.user_json(accounts.get(principal().username)), "acting_role": principal().role.value}


@bp.get("/v1/tokens")
@viewer
def list_tokens():
    return {"items": [tokens.token_json(t) for t in tokens.list_tokens(principal(), request.args.get("user"))]}


@bp.post("/v1/tokens")
@access(Role.VIEWER, basic=True)
def create_token():
    row, token = tokens.create_token(principal().user_id, json_body(optional=True), principal())
    return created(tokens.token_json(row, token), url_for(".list_tokens"))


@bp.delete("/v1/tokens/<int:token_id>")
@viewer
def revoke_token(token_id: int):
    tokens.revoke_token(token_id, principal())
    return no_content()


@bp.get("/v1/users")
@admin
def list_users():
    return {"items": [accounts.user_json(u) for u in accounts.list_users()]}


@bp.post("/v1/users")
@admin
def create_user():
    row = accounts.create_user(json_body())
    return created(accounts.user_json(row), url_for(".get_user", username=row.username))


@bp.get("/v1/users/<username>")
@admin
def get_user(username: str):
    return accounts.user_json(accounts.get(username))


@bp.patch("/v1/users/<username>")
@admin
def update_user(username: str):
    return accounts.user_json(accounts.update_user(username, json_body(), principal()))


@bp.get("/v1/audit")
@admin
def list_audit():
    page = audit.list_page(*inputs.page(request.args), inputs.audit_filters(request.args))
    return page.as_json(audit.as_json)
