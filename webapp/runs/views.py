from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from .. import inputs
from ..auth import operator, principal, viewer
from ..db import reads_only
from ..domain.errors import ValidationError
from ..forms import attempt
from ..htmx import back_to, download, page_or_fragment, polled_by_its_own_page, unchanged_or
from . import bp, compare, pages, services
from .forms import RunForm, UploadForm


@bp.get("/")
@viewer
def index():
    filters = inputs.run_filters(request.args)
    page = services.list_page(*inputs.page(request.args), filters)
    return page_or_fragment("runs/index.html", "runs/_table.html", **pages.listing(page, filters))


@bp.route("/new", methods=["GET", "POST"])
@operator
def create():
    form = RunForm()
    if row := form.submit(lambda data: services.create(data, principal().username)):
        return redirect(url_for(".detail", run_id=row.id), 303)
    return render_template("runs/new.html", **pages.new_run(form, UploadForm(), ask=request.args)), form.status


@bp.get("/queue-info")
@viewer  # what the runs pages show: who waits where, and for how long
def queue_info():
    return page_or_fragment(None, "runs/_queue_info.html", **pages.queue_info(inputs.queue_target(request.args)))


@bp.post("/upload")
@operator
def upload():
    form = UploadForm()
    entry = form.submit(lambda data: pages.upload(request.files, data, principal()))
    done = entry and (lambda: back_to(url_for(".create"), None, f"Uploaded {entry['path']}: it is in the file list."))
    return page_or_fragment(done or "runs/new.html", "runs/_upload_result.html", form.status,
                            **pages.new_run(RunForm(), form, entry))


@bp.get("/<int:run_id>")
@viewer
@reads_only  # its polls
def detail(run_id: int):
    return page_or_fragment("runs/detail.html", "runs/_status.html", polled_here=polled_by_its_own_page(),
                            **pages.shown(run_id, inputs.test_outcome(request.args)))


@bp.get("/<int:run_id>/log")
@viewer
@reads_only  # its polls
def log(run_id: int):
    offset = inputs.offset(request.args)
    return unchanged_or(lambda: pages.log_version(run_id, offset),
                        lambda: page_or_fragment(None, "runs/_log.html", **pages.log(run_id, offset)))


@bp.post("/<int:run_id>/cancel")
@operator
def cancel(run_id: int):
    message = attempt(services.cancel, run_id)
    back = lambda: back_to(url_for(".detail", run_id=run_id), message, "Cancelled.")  # noqa: E731
    return page_or_fragment(back, "runs/_status.html", **pages.run(run_id, message))


@bp.post("/<int:run_id>/rerun")
@operator
def rerun(run_id: int):
    try:
        row = services.rerun(run_id, principal().username)
    except ValidationError as exc:  # e.g. the environment was disabled or a file deleted since
        reasons = " ".join(m for messages in exc.fields.values() for m in messages) or exc.message
        flash(f"This run cannot be run again: {reasons}", "error")
        return redirect(url_for(".detail", run_id=run_id), 303)
    flash(f"Run #{row.id} queued with the same files and environment.", "success")
    return redirect(url_for(".detail", run_id=row.id), 303)


@bp.get("/<int:run_id>/log.txt")
@viewer
def log_text(run_id: int):
    return download(services.log_text(run_id), "text/plain", f"run-{run_id}.log")


@bp.get("/<int:run_id>/junit.xml")
@viewer
def junit(run_id: int):
    return download(services.junit_xml(run_id), "application/xml", f"run-{run_id}-junit.xml")


@bp.get("/<int:before_id>/compare/<int:after_id>")
@viewer
def compare_runs(before_id: int, after_id: int):
    return render_template("runs/compare.html", **compare.page(before_id, after_id))
