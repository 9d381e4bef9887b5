from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from .. import inputs
from ..auth import operator, viewer
from . import bp, pages, services
from .forms import EditWorkloadForm, ImportForm, WorkloadForm


@bp.get("/")
@viewer
def index():
    page = services.list_page(*inputs.page(request.args))
    return render_template("workloads/index.html", **pages.listing(page))


@bp.route("/new", methods=["GET", "POST"])
@operator
def create():
    form = WorkloadForm()
    if row := form.submit(services.create):
        flash(f"Workload {row.ip} saved.", "success")
        return redirect(url_for(".index"), 303)
    return render_template("workloads/form.html", **pages.form(form)), form.status


@bp.route("/import", methods=["GET", "POST"])
@operator
def import_file():
    step = pages.import_step(ImportForm())
    if step.created is not None:
        flash(f"Imported {step.created} workload{'s' * (step.created != 1)}.", "success")
        return redirect(url_for(".index"), 303)
    return render_template("workloads/import.html", **step.context), step.status


@bp.route("/<int:workload_id>/edit", methods=["GET", "POST"])
@operator
def edit(workload_id: int):
    row = services.get(workload_id)
    form = EditWorkloadForm(data=pages.form_data(row))
    if saved := form.submit(lambda data: services.update(workload_id, data)):
        flash(f"Workload {saved.ip} updated.", "success")
        return redirect(url_for(".index"), 303)
    return render_template("workloads/form.html", **pages.form(form, row)), form.status


@bp.route("/<int:workload_id>/delete", methods=["GET", "POST"])
@operator
def delete(workload_id: int):
    row = services.get(workload_id)
    if request.method == "POST" and pages.delete_or_explain(workload_id):
        flash(f"Workload {row.ip} deleted.", "success")
        return redirect(url_for(".index"), 303)
    return render_template("workloads/delete.html", **pages.delete(row))
