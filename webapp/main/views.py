from __future__ import annotations

from datetime import datetime, timezone

from flask import render_template

from ..auth import public, viewer
from . import bp, services


@bp.get("/ping")
@public
def ping():
    return {"status": "ok", "time": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")}


@bp.get("/")
@viewer
def index():
    return render_template("main/index.html", overview=services.overview())
