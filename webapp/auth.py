"""Who may use which route. Every view declares its access level with one of the decorators below;
one ``before_request`` hook authenticates the caller and enforces it, for the pages and the API alike.

* Pages authenticate by the session cookie (Flask-Login), never by a token.
* ``/api/v1`` authenticates by ``Authorization: Bearer <token>`` only, never by the cookie, so its CSRF
  exemption is safe; ``POST /api/v1/tokens`` also takes HTTP Basic, for a script's first token.
* ``/metrics`` is held to the API's rules (a Bearer token, refusals as JSON); its view also takes the
  ``METRICS_TOKEN`` setting as a token (``token_setting``), compared in constant time.
* A route without a declaration is refused to everyone but admins (and a test requires a declaration).
"""
from __future__ import annotations

import base64
import binascii
import hmac
from typing import Callable

from flask import Flask, current_app, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, UserMixin, current_user
from werkzeug.middleware.proxy_fix import ProxyFix

from .db import reading
from .domain.accounts import ANONYMOUS, Principal, Role
from .domain.errors import Forbidden, Unauthorized, UnsupportedMediaType
from .extensions import db
from .htmx import is_htmx

login_manager = LoginManager()

JSON = "application/json"
MULTIPART = "multipart/form-data"


SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


TOKEN_PATHS = ("/metrics",)  # beside /api/: authenticated by a Bearer token, refused as the API refuses


def access(level: Role | str, *, write: Role | str | None = None, basic: bool = False,
           accepts: str | tuple[str, ...] = JSON,
           token_setting: str | None = None) -> Callable:
    """Declare who may use a view: ``ANONYMOUS`` or the lowest role; ``write``: a higher role for its
    POST (a page that shows a form to all but saves it for some). ``basic``: the API view also takes
    HTTP Basic credentials. ``accepts``: the request body type the API view takes (or a tuple of them, for
    a view that reads each, e.g. a bulk import's CSV or JSON). ``token_setting``:
    the name of a setting whose value (when set) is also a valid Bearer token, acting as ``level``."""

    def declare(view):
        view.access = level if level == ANONYMOUS else Role(level)
        view.write_access = Role(write) if write else None
        view.basic_auth, view.accepts, view.token_setting = basic, accepts, token_setting
        return view

    return declare


def needed_role(view, method: str) -> Role | str:
    """The access level a request with ``method`` needs (undeclared views: admins only)."""
    if method not in SAFE_METHODS and getattr(view, "write_access", None):
        return view.write_access
    return getattr(view, "access", Role.ADMIN)


public = access(ANONYMOUS)
viewer = access(Role.VIEWER)
operator = access(Role.OPERATOR)
admin = access(Role.ADMIN)


class SessionUser(UserMixin):
    """What Flask-Login keeps for a signed-in browser. The id carries the account's session version,
    so a password change or a disabled account ends every older session at once."""

    def __init__(self, row):
        self.row = row

    def get_id(self) -> str:
        return f"{self.row.id}:{self.row.session_version}"

    @property
    def principal(self) -> Principal:
        return Principal(self.row.username, Role(self.row.role), "web", self.row.id)


@login_manager.user_loader
def _load_user(session_id: str):
    from .accounts import services as accounts

    if accounts.session_ended(session.get("sid")):
        return None
    with reading():  # SQLite: no write lock for the lookup; ended here, so a writing view holds it only to write
        row = accounts.user_for_session(session_id)
        db.end_read()
    return SessionUser(row) if row is not None else None


class SecureWhenHttps(SecureCookieSessionInterface):
    """The session cookie is ``Secure`` whenever the page was served over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure


def init_app(app: Flask) -> None:
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = app.config.get("SESSION_COOKIE_SAMESITE") or "Lax"
    app.session_interface = SecureWhenHttps()
    if app.config.get("TRUST_PROXY"):
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)
    login_manager.init_app(app)
    login_manager.session_protection = None  # the session version does the revoking
    app.before_request(guard)


def principal() -> Principal | None:
    """The caller of this request (None: nobody signed in)."""
    return g.get("principal")


def client_ip() -> str | None:
    return request.remote_addr


def token_path(path: str) -> bool:
    """Is ``path`` authenticated by token (the API, /metrics) rather than by the session cookie?"""
    return path.startswith("/api/") or path in TOKEN_PATHS


def is_api() -> bool:
    return token_path(request.path)


def guard():
    """Authenticate, then check the view's declared access level (and, for the API, the body type)."""
    if request.endpoint is None or request.endpoint == "static":
        return None  # routing already failed (404/405), or a static file
    view = current_app.view_functions[request.endpoint]
    needed = needed_role(view, request.method)
    api = is_api()
    g.client_ip, g.audit_via = client_ip(), "api" if api else "web"
    if needed == ANONYMOUS:  # open to all: a bad token sent along is no reason to refuse
        g.principal = _web_caller() if not api else None
        return None
    g.principal = _api_caller(view) if api else _web_caller()
    if g.principal is None:
        if api:
            raise Unauthorized()
        return _to_login()
    if not g.principal.can(needed):
        raise Forbidden(f"This needs the {needed.value} role; you act as {g.principal.role.value}.")
    if api:
        _check_body_type(getattr(view, "accepts", JSON))
    return None


def _web_caller() -> Principal | None:
    return current_user.principal if current_user.is_authenticated else None


def _api_caller(view) -> Principal | None:
    from .accounts import services as accounts
    from .accounts import tokens

    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    scheme, credentials = scheme.lower(), credentials.strip()
    if scheme == "bearer" and credentials:
        setting = getattr(view, "token_setting", None)
        if setting and _is_setting_token(credentials, current_app.config.get(setting)):
            return Principal(setting.lower(), needed_role(view, request.method), "api")
        found = tokens.authenticate_token(credentials)
        if found is None:
            raise Unauthorized("The token is unknown, expired or revoked.")
        return found
    if scheme == "basic" and getattr(view, "basic_auth", False):
        username, password = _basic(credentials)
        return accounts.authenticate_password(username, password, client_ip(), via="api")
    return None


def _is_setting_token(credentials: str, expected: str | None) -> bool:
    """``credentials`` is the setting's value (constant time; an empty setting matches nothing)."""
    return bool(expected) and hmac.compare_digest(credentials.encode(), str(expected).encode())


def _basic(credentials: str) -> tuple[str, str]:
    try:
        username, sep, password = base64.b64decode(credentials, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("Malformed Basic credentials.") from None
    if not sep:
        raise Unauthorized("Malformed Basic credentials.")
    return username, password


def _check_body_type(accepts: str) -> None:
    """Refuse any body but the one type the endpoint takes: a cross-site form or text/plain POST cannot
    be made to look like JSON without a CORS preflight, which this server never grants."""
    if request.method in ("GET", "HEAD", "OPTIONS", "DELETE"):
        return
    if not (request.content_length or request.headers.get("Content-Type") or request.headers.get("Transfer-Encoding")):
        return  # no body at all (e.g. POST …/cancel)
    accepted = (accepts,) if isinstance(accepts, str) else accepts
    if request.mimetype not in accepted:
        named = " or ".join(accepted)
        raise UnsupportedMediaType(f"Send the body as {named}.",
                                   {"Content-Type": [f"Must be {named}, not {request.mimetype or 'missing'}."]})


def _to_login():
    target = url_for("accounts.login", next=request.full_path if request.query_string else request.path)
    if is_htmx():
        return "", 204, {"HX-Redirect": target}
    return redirect(target, 303 if request.method != "GET" else 302)
