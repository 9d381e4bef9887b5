from __future__ import annotations

from flask import request

from .. import inputs
from ..auth import viewer
from ..htmx import page_or_fragment
from . import bp, pages


@bp.get("/")
@viewer
def index():
    context, status = pages.index(request.args)
    return page_or_fragment("testhistory/index.html", "testhistory/_table.html", status, **context)


@bp.get("/<path:nodeid>")
@viewer
def detail(nodeid: str):
    environment_id = inputs.history_args(request.args)["environment_id"]
    return page_or_fragment("testhistory/detail.html", "testhistory/_history.html",
                            **pages.view(nodeid, environment_id))
