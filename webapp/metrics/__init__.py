"""``GET /metrics``: Prometheus's text format, read at scrape time from the database and Redis (no shared state
between gunicorn processes); one ``CollectorRegistry`` per app, never the global one."""
from __future__ import annotations

from flask import Blueprint, Flask
from prometheus_client import CollectorRegistry

bp = Blueprint("metrics", __name__)


def init_app(app: Flask) -> None:
    from .collector import CutoverCollector

    registry = CollectorRegistry(auto_describe=False)
    registry.register(CutoverCollector())
    app.extensions["metrics_registry"] = registry


from . import views  # noqa: E402,F401  (the routes)
