"""JSON endpoints for test runs, test files and environments."""
from __future__ import annotations

from flask import request, url_for

from .. import inputs
from ..auth import MULTIPART, access, admin, operator, principal, viewer
from ..db import reads_only
from ..domain.accounts import Role
from ..environments import services as environments
from ..htmx import download
from ..runs import services as runs
from ..runs import compare, queueing, testfiles
from . import bp
from .helpers import created, json_body, no_content


@bp.get("/v1/runs")
@viewer
def list_runs():
    page = runs.list_page(*inputs.page(request.args), inputs.run_filters(request.args))
    return runs.page_json(page)


@bp.post("/v1/runs")
@operator
def create_run():
    row = runs.create(json_body(), principal().username)
    return created(runs.as_json(row), url_for(".get_run", run_id=row.id))


@bp.get("/v1/runs/<int:run_id>")
@viewer
@reads_only  # polled
def get_run(run_id: int):
    return runs.as_json(runs.get(run_id))


@bp.get("/v1/runs/<int:run_id>/log")
@viewer
@reads_only  # polled
def run_log(run_id: int):
    return runs.log_slice(run_id, inputs.offset(request.args))


@bp.post("/v1/runs/<int:run_id>/cancel")
@operator
def cancel_run(run_id: int):
    return runs.as_json(runs.cancel(run_id)), 202


@bp.post("/v1/runs/<int:run_id>/rerun")
@operator
def rerun(run_id: int):
    row = runs.rerun(run_id, principal().username)
    return created(runs.as_json(row), url_for(".get_run", run_id=row.id))


@bp.get("/v1/runs/<int:run_id>/junit.xml")
@viewer
def run_junit(run_id: int):
    return download(runs.junit_xml(run_id), "application/xml", f"run-{run_id}-junit.xml")


@bp.get("/v1/runs/<int:run_id>/log.txt")
@viewer
def run_log_text(run_id: int):
    return download(runs.log_text(run_id), "text/plain", f"run-{run_id}.log")  # Flask adds the charset


@bp.get("/v1/runs/<int:before_id>/compare/<int:after_id>")
@viewer
def compare_runs(before_id: int, after_id: int):
    return compare.compare(before_id, after_id)


@bp.get("/v1/test-files")
@viewer
def list_test_files():
    return testfiles.list_files()


@bp.post("/v1/test-files")
@access(Role.OPERATOR, accepts=MULTIPART)
def upload_test_file():
    upload = inputs.upload(request.files, request.form)
    entry = testfiles.upload(**upload, actor=principal())
    return created(entry, url_for(".list_test_files"))


@bp.delete("/v1/test-files/<path:path>")
@operator
def delete_test_file(path: str):
    testfiles.delete(path, actor=principal())
    return no_content()


@bp.get("/v1/environments")
@viewer
def list_environments():
    return environments.list_json(inputs.label_filter(request.args))


@bp.get("/v1/environments/<int:environment_id>")
@viewer
def get_environment(environment_id: int):
    return environments.as_json(environments.get(environment_id))


@bp.patch("/v1/environments/<int:environment_id>")
@admin
def update_environment(environment_id: int):
    return environments.as_json(environments.update(environment_id, json_body()))


@bp.post("/v1/environments/<int:environment_id>/unlock")
@admin
def unlock_environment(environment_id: int):
    return environments.as_json(environments.unlock(environment_id))


@bp.get("/v1/pools/<label>")
@viewer
def get_pool(label: str):
    return queueing.pool_json(inputs.pool_label(label))
