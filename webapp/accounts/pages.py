"""What the account pages show, and the session's start and end (Flask-Login)."""
from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from flask import current_app, flash, redirect, session, url_for
from flask_login import login_user, logout_user
from wtforms import SelectChoice

from ..audit import services as audit
from ..auth import SessionUser
from ..domain.accounts import Principal, Role
from ..extensions import db
from ..models import UserRow
from . import services as accounts
from . import tokens


def safe_next(target: str | None) -> str:
    """Only a path on this site: never another host (``//evil``, ``https://…``, ``/\\evil``)."""
    parts = urlsplit(target or "")
    if not target or parts.scheme or parts.netloc or not target.startswith("/") or target.startswith(("//", "/\\")) \
            or "\\" in target or any(ord(c) < 32 for c in target):
        return url_for("main.index")
    return target


def start_session(principal: Principal) -> None:
    """A new session for this account: whatever the old cookie held is dropped (the id rotates)."""
    session.clear()
    login_user(SessionUser(db.session.get(UserRow, principal.user_id)))
    session["username"] = principal.username
    session["sid"] = secrets.token_urlsafe(16)  # names this session, so that signing out can end it everywhere


def end_session(principal: Principal) -> None:
    audit.record("logout", f"user:{principal.username}")
    db.session.commit()
    accounts.end_session_everywhere(session.get("sid"), current_app.permanent_session_lifetime)
    logout_user()
    session.clear()


def password_changed(principal: Principal):
    start_session(principal)  # this session goes on; every other one ends
    flash("Password changed. Your other sessions are signed out.", "success")
    return redirect(url_for(".account"), 303)


def account(principal: Principal, password_form, token_form, new) -> dict:
    """The account page; ``new``: the token just made (shown once, answered 201)."""
    row, token = new if new else (None, None)
    token_form.role.choices = [SelectChoice(r.value) for r in Role if principal.role.allows(r)]
    if not token_form.is_submitted():
        token_form.role.data = principal.role.value
    return {"user": accounts.get(principal.username), "password_form": password_form, "token_form": token_form,
            "tokens": tokens.list_tokens(principal), "new_token": token, "new_token_row": row,
            "status": 201 if new else max(password_form.status, token_form.status)}


def users() -> dict:
    return {"users": accounts.list_users()}


def tokens_of(row: UserRow) -> list:
    return tokens.tokens_of(row.username)
