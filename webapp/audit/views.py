from __future__ import annotations

from flask import request

from .. import inputs
from ..auth import admin
from ..htmx import page_or_fragment
from . import bp, pages, services


@bp.get("/")
@admin
def index():
    page = services.list_page(*inputs.page(request.args), inputs.audit_filters(request.args))
    return page_or_fragment("audit/index.html", "audit/_table.html", **pages.listing(page, request.args))
