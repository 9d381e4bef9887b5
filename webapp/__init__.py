"""Cutover: migrate workloads to the cloud and prove them with tests."""
from __future__ import annotations

from flask import Flask
from werkzeug.routing import IntegerConverter

from . import auth, context, logs
from . import config as settings
from .domain.migration import SYSTEM_VOLUME
from .errors import register_error_handlers
from .extensions import csrf, db, queues, vault
from .htmx import add_vary


def create_app(config: dict | None = None) -> Flask:
    """Build the app. Tests pass their own ``config``; everything else comes from the environment."""
    app = Flask(__name__, template_folder="../templates", static_folder="../static")
    app.url_map.converters["int"] = IdConverter
    app.config.update(settings.load(config))
    logs.configure(app.config["LOG_FORMAT"])

    logs.init_app(app)  # first: every later hook's log lines and refusals carry the request id
    db.init_app(app)
    csrf.init_app(app)
    vault.init_app(app)
    queues.init_app(app)
    auth.init_app(app)
    register_error_handlers(app)
    app.after_request(add_vary)
    app.after_request(_security_headers)

    from .accounts import bp as accounts_bp
    from .accounts import services as accounts
    from .accounts.cli import users_cli
    from .api import bp as api_bp
    from .audit import bp as audit_bp
    from .credentials_cli import rotate_credentials
    from .environments import bp as environments_bp
    from .events import bp as events_bp
    from .main import bp as main_bp
    from . import metrics
    from .migrations import bp as migrations_bp
    from .runs import bp as runs_bp
    from .testhistory import bp as testhistory_bp
    from .waves import bp as waves_bp
    from .schedules import bp as schedules_bp
    from .workloads import bp as workloads_bp

    for bp in (main_bp, accounts_bp, audit_bp, workloads_bp, migrations_bp, runs_bp, environments_bp, events_bp,
               waves_bp, schedules_bp, testhistory_bp, metrics.bp, api_bp):
        app.register_blueprint(bp)
    metrics.init_app(app)
    csrf.exempt(api_bp)  # safe: the API never authenticates by cookie (see webapp.auth)
    accounts.init_app(app)
    app.cli.add_command(users_cli)
    app.cli.add_command(rotate_credentials)
    context.init_app(app)
    app.jinja_env.globals["SYSTEM_VOLUME"] = SYSTEM_VOLUME  # the C:\\ rule's volume, named by the domain only
    if not app.config.get("SKIP_ADMIN_BOOTSTRAP"):
        accounts.ensure_admin(app)
    return app


class IdConverter(IntegerConverter):
    """``<int:…>`` ids that fit a database key (at most 9 digits): a longer one is simply not found."""

    regex = r"\d{1,9}"


def _security_headers(response):
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response
