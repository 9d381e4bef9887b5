from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from .. import inputs
from ..auth import operator, principal, viewer
from ..db import reads_only
from ..forms import attempt
from ..htmx import back_to, page_or_fragment, unchanged_or
from ..workloads import services as workloads
from . import bp, pages, services
from .forms import EditMigrationForm, MigrationForm


@bp.get("/")
@viewer
def index():
    filters = inputs.migration_filters(request.args)
    page = services.list_page(*inputs.page(request.args), filters)
    return page_or_fragment("migrations/index.html", "migrations/_table.html", **pages.listing(page, filters))


@bp.route("/new", methods=["GET", "POST"])
@operator
def create():
    form = MigrationForm(formdata=request.form if request.method == "POST" else request.args or None)
    if row := form.with_sources(workloads.choices()).submit(services.create):
        flash(f"Migration #{row.id} created. Check the preview, then run it.", "success")
        return redirect(url_for(".detail", migration_id=row.id), 303)
    return render_template("migrations/form.html", **pages.form(form)), form.status


@bp.get("/volumes")
@viewer
def volumes():
    return page_or_fragment(None, "migrations/_volumes.html", **pages.volumes(request.args.get("source_id")))


@bp.get("/<int:migration_id>")
@viewer
@reads_only  # its polls
def detail(migration_id: int):
    shown = request.args.get("run")
    return unchanged_or(lambda: pages.status_version(migration_id, shown), lambda: page_or_fragment(
        "migrations/detail.html", "migrations/_status.html", **pages.status(migration_id, shown)))


@bp.get("/<int:migration_id>/preflight")
@operator  # as the API's preflight: the step before Run (reads only)
def preflight(migration_id: int):
    return page_or_fragment("migrations/detail.html", "migrations/_preflight.html", **pages.view(migration_id))


@bp.route("/<int:migration_id>/edit", methods=["GET", "POST"])
@operator
def edit(migration_id: int):
    row = services.editable(migration_id)
    form = EditMigrationForm(data=pages.form_data(row))
    if saved := form.submit(lambda data: services.update(migration_id, data)):
        flash(f"Migration #{saved.id} updated.", "success")
        return redirect(url_for(".detail", migration_id=saved.id), 303)
    return render_template("migrations/form.html", **pages.form(form, row)), form.status


@bp.post("/<int:migration_id>/run")
@operator
def run(migration_id: int):
    message = attempt(services.run, migration_id, principal().username)  # the account is told when it ends
    return _status_or_back(migration_id, message)


@bp.post("/<int:migration_id>/cancel")
@operator
def cancel(migration_id: int):
    message = attempt(services.cancel, migration_id)
    return _status_or_back(migration_id, message)


@bp.route("/<int:migration_id>/delete", methods=["GET", "POST"])
@operator
def delete(migration_id: int):
    row = services.get(migration_id)
    if request.method == "POST" and not (message := attempt(services.delete, migration_id)):
        flash(f"Migration #{migration_id} deleted.", "success")
        return redirect(url_for(".index"), 303)
    return render_template("migrations/delete.html", row=row, message=request.method == "POST" and message)


def _status_or_back(migration_id: int, message: str | None):
    """htmx gets the refreshed status fragment (and the Preflight section, out of band); a plain browser is sent
    back to the detail page."""
    back = lambda: back_to(url_for(".detail", migration_id=migration_id), message, "Done.")  # noqa: E731
    return page_or_fragment(back, "migrations/_run_answer.html", **pages.view(migration_id, message))
