from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from .. import inputs
from ..auth import operator, principal, viewer
from ..forms import attempt
from ..htmx import back_to, page_or_fragment
from . import bp, pages, services


@bp.get("/")
@viewer
def index():
    page = services.list_page(*inputs.page(request.args))
    return page_or_fragment("waves/index.html", "waves/_table.html", **pages.listing(page))


@bp.post("/new")
@operator
def create():
    form = pages.new_form(request.form)
    if row := form.submit(lambda data: services.create(data, principal().username)):
        flash(f"Wave #{row.id} created ({row.state}).", "success")
        return redirect(url_for(".detail", wave_id=row.id), 303)
    page = services.list_page(*inputs.page({}))
    return render_template("waves/index.html", **pages.listing(page, form)), form.status


@bp.get("/<int:wave_id>")
@viewer
def detail(wave_id: int):
    return page_or_fragment("waves/detail.html", "waves/_progress.html", **pages.view(wave_id))


@bp.post("/<int:wave_id>/pause")
@operator
def pause(wave_id: int):
    return _progress_or_back(wave_id, attempt(services.pause, wave_id))


@bp.post("/<int:wave_id>/resume")
@operator
def resume(wave_id: int):
    return _progress_or_back(wave_id, attempt(services.resume, wave_id))


@bp.post("/<int:wave_id>/cancel")
@operator
def cancel(wave_id: int):
    return _progress_or_back(wave_id, attempt(services.cancel, wave_id))


def _progress_or_back(wave_id: int, message: str | None):
    """htmx gets the refreshed progress fragment; a plain browser is sent back to the wave's page."""
    back = lambda: back_to(url_for(".detail", wave_id=wave_id), message, "Done.")  # noqa: E731
    return page_or_fragment(back, "waves/_progress.html", **pages.view(wave_id, message))
