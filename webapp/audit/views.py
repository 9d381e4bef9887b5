from __future__ import annotations

from flask import request

from .. import inputs
from ..auth import admin
from ..htmx import page_or_fragment
from . import bp, pages, services


@bp.get("/")
@admin
def index():
    filters = services.check_filters(request.args)
    page = services.list_page(*inputs.page(request.args), filters)
    return page_or_fragment("audit/index.html", "audit/_table.html", **pages.listing(page, request.args))
