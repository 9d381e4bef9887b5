from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from .. import inputs
from ..auth import operator, principal, viewer
from ..htmx import page_or_fragment
from . import bp, pages, services


@bp.get("/")
@viewer
def index():
    page = services.list_page(*inputs.page(request.args))
    return page_or_fragment("schedules/index.html", "schedules/_table.html", **pages.listing(page))


@bp.post("/new")
@operator
def create():
    form = pages.new_form(request.form)
    if row := form.submit(lambda data: services.create(data, principal().username)):
        flash(f"Schedule #{row.id} created: next due {row.next_due_at or 'never (disabled)'} UTC.", "success")
        return redirect(url_for(".detail", schedule_id=row.id), 303)
    page = services.list_page(*inputs.page({}))
    return render_template("schedules/index.html", **pages.listing(page, form)), form.status


@bp.get("/<int:schedule_id>")
@viewer
def detail(schedule_id: int):
    return render_template("schedules/detail.html", **pages.view(schedule_id))


@bp.post("/<int:schedule_id>")
@operator
def update(schedule_id: int):
    form, who = pages.new_form(request.form), principal()
    if form.submit(lambda data: services.update(schedule_id, data, who.username, who.role)):
        flash("Schedule saved.", "success")
        return redirect(url_for(".detail", schedule_id=schedule_id), 303)
    return render_template("schedules/detail.html", **pages.view(schedule_id, form)), form.status


@bp.post("/<int:schedule_id>/delete")
@operator
def delete(schedule_id: int):
    who = principal()
    services.delete(schedule_id, who.username, who.role)
    flash(f"Schedule #{schedule_id} deleted.", "success")
    return redirect(url_for(".index"), 303)
