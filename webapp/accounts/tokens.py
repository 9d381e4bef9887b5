"""API tokens: made, listed and revoked by their owners (admins: anyone's), and checked on every API call.
Like ``services``, never reads ``request``: the caller passes who is acting (a ``Principal``)."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, select

from .. import inputs
from ..audit import services as audit
from ..db import update as sql_update
from ..db import reading, utcnow
from ..domain.accounts import Principal, Role, looks_like_token, new_token, token_hash
from ..domain.errors import Forbidden, NotFound
from ..extensions import db
from ..models import TokenRow, UserRow
from .services import get

LAST_USED_EVERY = timedelta(seconds=60)  # a token's last_used_at is written at most this often


def _token_key() -> bytes:
    return ("api-token:" + current_app.config["SECRET_KEY"]).encode()


def token_json(row: TokenRow, token: str | None = None) -> dict:
    body = {"id": row.id, "name": row.name, "role": row.role, "user": row.user.username, "prefix": row.prefix,
            "created_at": row.created_at.isoformat(),
            "expires_at": row.expires_at.isoformat() if row.expires_at else None,
            "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
            "revoked": row.revoked_at is not None}
    if token is not None:
        body["token"] = token
    return body


def create_token(user_id: int, data: Any, actor: Principal) -> tuple[TokenRow, str]:
    """A new token for the account ``user_id``; the clear token is returned once and never stored."""
    owner = db.session.get(UserRow, user_id)
    own_role = Role.lowest(Role(owner.role), actor.role) if actor.user_id == user_id else Role(owner.role)
    clean = inputs.token(data, own_role)
    token = new_token()
    now = utcnow()
    row = TokenRow(user_id=user_id, name=clean["name"], role=clean["role"].value, prefix=token[:8],
                   token_hash=token_hash(token, _token_key()), created_at=now,
                   expires_at=now + timedelta(days=clean["expires_in_days"]) if clean["expires_in_days"] else None)
    db.session.add(row)
    db.session.flush()
    audit.record("token.create", f"token:{row.id}", user=owner.username, name=row.name, role=row.role)
    db.session.commit()
    return row, token


def list_tokens(actor: Principal, username: str | None = None) -> list[TokenRow]:
    """The caller's own tokens; an admin may ask for another account's (``?user=``) or ``*`` for all."""
    stmt = select(TokenRow).where(TokenRow.revoked_at.is_(None)).order_by(TokenRow.id)
    if username and username != actor.username:
        if not actor.is_admin:
            raise Forbidden("Only an admin may list another account's tokens.")
        if username != "*":
            stmt = stmt.where(TokenRow.user_id == get(username).id)
    else:
        stmt = stmt.where(TokenRow.user_id == actor.user_id)
    return list(db.session.scalars(stmt))


def tokens_of(username: str) -> list[TokenRow]:
    """An account's live tokens (for its admin page)."""
    return list(db.session.scalars(select(TokenRow).where(TokenRow.user_id == get(username).id,
                                                          TokenRow.revoked_at.is_(None)).order_by(TokenRow.id)))


def revoke_token(token_id: int, actor: Principal) -> str:
    """Revoke a token of one's own (admins: anyone's); returns its owner's username."""
    row = db.session.get(TokenRow, token_id)
    if row is None or row.revoked_at is not None or (row.user_id != actor.user_id and not actor.is_admin):
        raise NotFound("token")  # another account's token is not even confirmed to exist
    row.revoked_at = utcnow()
    audit.record("token.revoke", f"token:{row.id}", user=row.user.username, name=row.name)
    db.session.commit()
    return row.user.username


# Built once: only the hash changes between requests (statement building costs more than the lookup).
_TOKEN_LOOKUP = (
    select(TokenRow.id, TokenRow.role, TokenRow.expires_at, TokenRow.last_used_at, TokenRow.revoked_at,
           UserRow.id.label("user_id"), UserRow.username, UserRow.role.label("user_role"), UserRow.disabled)
    .join(UserRow, UserRow.id == TokenRow.user_id)
    .where(TokenRow.token_hash == bindparam("token_hash")))


def authenticate_token(token: str) -> Principal | None:
    """The principal of a valid token: one indexed lookup by its keyed hash (microseconds of hashing), in a read
    transaction of its own."""
    if not looks_like_token(token):
        return None
    now = utcnow()
    with reading():  # SQLite: no write lock for the lookup; ended here, so a writing view holds it only to write
        found = db.session.execute(_TOKEN_LOOKUP, {"token_hash": token_hash(token, _token_key())}).first()
        db.end_read()
    if found is None or found.revoked_at is not None or found.disabled or (found.expires_at and found.expires_at <= now):
        return None
    if found.last_used_at is None or now - found.last_used_at > LAST_USED_EVERY:
        db.session.execute(sql_update(TokenRow).where(TokenRow.id == found.id).values(last_used_at=now))
        db.session.commit()
    role = Role.lowest(Role(found.role), Role(found.user_role))  # a demoted owner demotes its tokens
    return Principal(found.username, role, "api", found.user_id, found.id)
