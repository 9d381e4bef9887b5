from __future__ import annotations

from datetime import datetime, timezone

from flask import request

from .. import health
from ..auth import public, viewer
from ..htmx import page_or_fragment, seen
from ..version import VERSION
from . import bp, pages


@bp.get("/ping")
@public
def ping():
    now = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    return {"status": "ok", "time": now, "version": VERSION}


@bp.get("/readyz")
@public
def readyz():
    ready, checks = health.readiness()
    return {"status": "ready" if ready else "not_ready", "checks": checks}, 200 if ready else 503


@bp.get("/")
@viewer
def index():
    return page_or_fragment("main/index.html", "main/_now.html", **pages.overview(seen(request.args)))
