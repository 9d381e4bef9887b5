from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from .. import inputs
from ..forms import attempt
from ..htmx import is_htmx, page_or_fragment
from ..workloads import services as workloads
from ..auth import operator, principal, viewer
from . import bp, services
from .forms import EditMigrationForm, MigrationForm


@bp.get("/")
@viewer
def index():
    page = services.list_page(*inputs.page(request.args))
    return page_or_fragment("migrations/index.html", "migrations/_table.html", page=page,
                            ips=services.source_ips(page.items))


@bp.route("/new", methods=["GET", "POST"])
@operator
def create():
    form = MigrationForm(formdata=request.form if request.method == "POST" else request.args or None)
    if row := form.with_sources(workloads.choices()).submit(services.create):
        flash(f"Migration #{row.id} created. Check the preview, then run it.", "success")
        return redirect(url_for(".detail", migration_id=row.id), 303)
    return render_template("migrations/form.html", form=form, row=None,
                           source=services.source_for_form(form.source_id.data)), form.status


@bp.get("/volumes")
@viewer
def volumes():
    source = services.source_for_form(request.args.get("source_id"))
    return render_template("migrations/_volumes.html", source=source, selected=None, field=None)


@bp.get("/<int:migration_id>")
@viewer
def detail(migration_id: int):
    return page_or_fragment("migrations/detail.html", "migrations/_status.html", **services.view(migration_id))


@bp.route("/<int:migration_id>/edit", methods=["GET", "POST"])
@operator
def edit(migration_id: int):
    row = services.editable(migration_id)
    form = EditMigrationForm(data=services.form_data(row))
    if saved := form.submit(lambda data: services.update(migration_id, data)):
        flash(f"Migration #{saved.id} updated.", "success")
        return redirect(url_for(".detail", migration_id=saved.id), 303)
    return render_template("migrations/form.html", form=form, row=row,
                           source=services.source_for_form(row.source_id)), form.status


@bp.post("/<int:migration_id>/run")
@operator
def run(migration_id: int):
    message = attempt(services.run, migration_id, principal().username)  # the account is told when it ends
    return _status_or_redirect(migration_id, message)


@bp.post("/<int:migration_id>/cancel")
@operator
def cancel(migration_id: int):
    message = attempt(services.cancel, migration_id)
    return _status_or_redirect(migration_id, message)


@bp.route("/<int:migration_id>/delete", methods=["GET", "POST"])
@operator
def delete(migration_id: int):
    row = services.get(migration_id)
    if request.method == "POST" and not (message := attempt(services.delete, migration_id)):
        flash(f"Migration #{migration_id} deleted.", "success")
        return redirect(url_for(".index"), 303)
    return render_template("migrations/delete.html", row=row, message=request.method == "POST" and message)


def _status_or_redirect(migration_id: int, message: str | None):
    """htmx gets the refreshed status fragment; a plain browser is sent back to the detail page."""
    if is_htmx():
        return render_template("migrations/_status.html", message=message, **services.view(migration_id))
    flash(message or "Done.", "error" if message else "success")
    return redirect(url_for(".detail", migration_id=migration_id), 303)
