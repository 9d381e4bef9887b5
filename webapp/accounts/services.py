"""Accounts, passwords and sign-in throttling (API tokens: ``tokens``). Never reads ``request``: the caller
passes who is acting (a ``Principal``) and the client's address."""
from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Flask, current_app
from redis.exceptions import RedisError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from .. import inputs
from ..audit import services as audit
from ..db import utcnow
from ..domain.accounts import USERNAME, Principal, Role, check_password
from ..domain.errors import Conflict, NotFound, Throttled, Unauthorized, ValidationError
from ..extensions import db, queues
from ..models import UserRow

LOGIN_FAILED = "Wrong username or password."  # one message: no hint whether the account exists
THROTTLE_LIMIT = 5  # failed sign-ins per window, per username and per client address
THROTTLE_WINDOW = 60  # seconds


def init_app(app: Flask) -> None:
    """The password hasher (argon2id). Tests may make it cheaper with ``ARGON2_MEMORY_KIB``/``ARGON2_TIME_COST``."""
    app.extensions["passwords"] = PasswordHasher(time_cost=int(app.config.get("ARGON2_TIME_COST", 3)),
                                                 memory_cost=int(app.config.get("ARGON2_MEMORY_KIB", 65536)),
                                                 parallelism=int(app.config.get("ARGON2_PARALLELISM", 4)))


def _hasher() -> PasswordHasher:
    return current_app.extensions["passwords"]


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def _verify(row: UserRow | None, password: str) -> bool:
    if row is None:
        _hasher().hash(password)  # the same work as for a real account: timing tells nothing
        return False
    try:
        _hasher().verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    return True


# --- users --------------------------------------------------------------------------------------------

def user_json(row: UserRow) -> dict:
    return {"username": row.username, "display_name": row.display_name or "", "role": row.role,
            "disabled": row.disabled, "created_at": row.created_at.isoformat(),
            "last_login_at": row.last_login_at.isoformat() if row.last_login_at else None}


def find(username: str) -> UserRow | None:
    """The account of that name, any case; a string that cannot be a username (NUL, too long…) finds none."""
    name = username.strip().lower() if isinstance(username, str) else ""
    if not USERNAME.fullmatch(name):
        return None
    return db.session.scalar(select(UserRow).where(UserRow.username == name))


def get(username: str) -> UserRow:
    row = find(username)
    if row is None:
        raise NotFound("user")
    return row


def list_users() -> list[UserRow]:
    return list(db.session.scalars(select(UserRow).order_by(UserRow.username)))


def count() -> int:
    return db.session.scalar(select(func.count()).select_from(UserRow)) or 0


def create_user(data: Any, *, audit_action: str = "user.create") -> UserRow:
    clean = inputs.user(data)
    row = UserRow(username=clean["username"], display_name=clean["display_name"], role=clean["role"].value,
                  password_hash=hash_password(clean["password"]))
    db.session.add(row)
    audit.record(audit_action, f"user:{row.username}", role=row.role)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("duplicate_username", f"The username {clean['username']} is taken.",
                       {"username": ["This username is taken."]}) from None
    return row


def update_user(username: str, data: Any, actor: Principal) -> UserRow:
    """An admin changes ``role``, ``disabled``, ``display_name`` or ``password`` (fields not sent stay)."""
    row = get(username)
    changes = inputs.user_changes(data, row.username, own=row.id == actor.user_id)
    _apply_user_changes(row, changes)
    db.session.commit()
    return row


def _apply_user_changes(row: UserRow, changes: dict) -> None:
    target = f"user:{row.username}"
    if "role" in changes and changes["role"] != row.role:
        audit.record("user.role", target, old=row.role, new=changes["role"])
        row.role = changes["role"]
    if "display_name" in changes and changes["display_name"] != row.display_name:
        audit.record("user.update", target, display_name=changes["display_name"])
        row.display_name = changes["display_name"]
    if "password" in changes:
        audit.record("user.password", target)
        row.password_hash = hash_password(changes["password"])
        row.session_version += 1
        _forget_initial_password(row.username)
    if "disabled" in changes and changes["disabled"] != row.disabled:
        audit.record("user.disable" if changes["disabled"] else "user.enable", target)
        row.disabled = changes["disabled"]
        row.session_version += 1


def change_own_password(actor: Principal, current_password: str, new_password: Any) -> UserRow:
    row = db.session.get(UserRow, actor.user_id)
    fields = {}
    if not _verify(row, current_password or ""):
        fields["current_password"] = ["This is not your current password."]
    try:
        new = check_password(new_password, "new_password")
    except ValidationError as exc:
        fields.update(exc.fields)
    if fields:
        raise ValidationError(fields)
    _apply_user_changes(row, {"password": new})
    db.session.commit()
    return row


def end_session_everywhere(sid: str | None, lifetime: timedelta) -> None:
    """Signing out ends this session even in a copy of its cookie: its id is refused until the cookie
    would have expired anyway."""
    if sid:
        try:
            queues.redis.set(f"session-ended:{sid}", "1", ex=max(int(lifetime.total_seconds()), 1))
        except RedisError:
            pass  # the browser's own cookie is cleared all the same


def session_ended(sid: str | None) -> bool:
    if not sid:
        return True  # every session made by signing in has an id
    try:
        return bool(queues.redis.exists(f"session-ended:{sid}"))
    except RedisError:
        return False  # without Redis, signed-in people keep working; disabling an account still works


def user_for_session(session_id: str) -> UserRow | None:
    """The signed-in account of a session id ``<id>:<version>``, unless disabled or since revoked."""
    user_id, _, version = (session_id or "").partition(":")
    if not (user_id.isdigit() and version.isdigit()):
        return None
    row = db.session.get(UserRow, int(user_id))
    if row is None or row.disabled or row.session_version != int(version):
        return None
    return row


# --- signing in ----------------------------------------------------------------------------------------

def _throttle_keys(username: str, ip: str | None) -> list[str]:
    return [f"login-fail:user:{(username or '').strip().lower()[:64]}", f"login-fail:ip:{ip or '-'}"]


def _retry_after(keys: list[str]) -> int:
    """Seconds until another attempt is allowed; 0 when not throttled. Shared by every web process."""
    try:
        with queues.redis.pipeline() as pipe:
            for key in keys:
                pipe.get(key)
                pipe.ttl(key)
            values = pipe.execute()
    except RedisError:
        return 0  # without Redis, sign-in still works (unthrottled) rather than locking everyone out
    waits = [max(int(ttl), 1) for count, ttl in zip(values[::2], values[1::2]) if count and int(count) >= THROTTLE_LIMIT]
    return max(waits, default=0)


def _count_failure(keys: list[str]) -> None:
    try:
        with queues.redis.pipeline() as pipe:
            for key in keys:  # the window starts with the first failure (works on Redis 6 and 7)
                pipe.set(key, 0, ex=THROTTLE_WINDOW, nx=True)
                pipe.incr(key)
            pipe.execute()
    except RedisError:
        pass


def authenticate_password(username: str, password: str, ip: str | None, via: str) -> Principal:
    """Check a username and password (pages and HTTP Basic). Throttled; every attempt is audited."""
    keys = _throttle_keys(username, ip)
    if wait := _retry_after(keys):
        raise Throttled(wait)
    row = find(username)
    if not _verify(row, password or "") or row.disabled:
        _count_failure(keys)
        attempted = "".join(c for c in (username or "").strip().lower() if c.isprintable())[:64] or "?"
        audit.record("login.failed", f"user:{attempted}", actor=attempted)
        db.session.commit()
        raise Unauthorized(LOGIN_FAILED)
    row.last_login_at = utcnow()
    audit.record("login.ok", f"user:{row.username}", actor=row.username)
    db.session.commit()
    return Principal(row.username, Role(row.role), via, row.id)


# --- the first admin -------------------------------------------------------------------------------------

INITIAL_PASSWORD_FILE = "initial_admin_password"


def _forget_initial_password(username: str) -> None:
    """Once the first admin has a password of its own, the generated one is no use: remove its file."""
    if username == (current_app.config.get("ADMIN_USERNAME") or "admin"):
        (Path(current_app.config["DATA_DIR"]) / INITIAL_PASSWORD_FILE).unlink(missing_ok=True)


def ensure_admin(app: Flask) -> str | None:
    """When no account exists, create the admin (``ADMIN_USERNAME``, ``ADMIN_PASSWORD`` or a random one
    written to ``DATA_DIR/initial_admin_password``, 0600). Returns the generated password, if any."""
    with app.app_context():
        if count():
            return None
        username = app.config.get("ADMIN_USERNAME") or "admin"
        password = app.config.get("ADMIN_PASSWORD") or ""
        generated = None
        if not password:
            generated = password = secrets.token_urlsafe(18)
        audit.act_as("system", "cli")
        try:
            create_user({"username": username, "password": password, "role": "admin"}, audit_action="user.bootstrap")
        except Conflict:
            return None  # another process created it first
        if generated:
            path = Path(app.config["DATA_DIR"]) / INITIAL_PASSWORD_FILE
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(generated + "\n")
        return generated
