"""JSON endpoints. Each one: parse → service → JSON."""
from __future__ import annotations

from flask import request, url_for

from .. import inputs
from ..migrations import preflight, services as migrations
from ..workloads import services as workloads
from ..auth import operator, principal, viewer
from ..db import reads_only
from . import bp
from .helpers import created, json_body, no_content


@bp.get("/v1/workloads")
@viewer
def list_workloads():
    return workloads.list_page(*inputs.page(request.args)).as_json(workloads.as_json)


@bp.post("/v1/workloads")
@operator
def create_workload():
    row = workloads.create(json_body())
    return created(workloads.as_json(row), url_for(".get_workload", workload_id=row.id))


@bp.get("/v1/workloads/<int:workload_id>")
@viewer
def get_workload(workload_id: int):
    return workloads.as_json(workloads.get(workload_id))


@bp.route("/v1/workloads/<int:workload_id>", methods=["PUT", "PATCH"])
@operator
def update_workload(workload_id: int):
    return workloads.as_json(workloads.update(workload_id, json_body()))


@bp.delete("/v1/workloads/<int:workload_id>")
@operator
def delete_workload(workload_id: int):
    workloads.delete(workload_id)
    return no_content()


@bp.get("/v1/migrations")
@viewer
def list_migrations():
    return migrations.list_page(*inputs.page(request.args)).as_json(migrations.as_json)


@bp.post("/v1/migrations")
@operator
def create_migration():
    row = migrations.create(json_body())
    return created(migrations.as_json(row), url_for(".get_migration", migration_id=row.id))


@bp.get("/v1/migrations/<int:migration_id>")
@viewer
@reads_only  # polled
def get_migration(migration_id: int):
    return migrations.as_json(migrations.get(migration_id))


@bp.route("/v1/migrations/<int:migration_id>", methods=["PUT", "PATCH"])
@operator
def update_migration(migration_id: int):
    return migrations.as_json(migrations.update(migration_id, json_body()))


@bp.delete("/v1/migrations/<int:migration_id>")
@operator
def delete_migration(migration_id: int):
    migrations.delete(migration_id)
    return no_content()


@bp.post("/v1/migrations/<int:migration_id>/run")
@operator
def run_migration(migration_id: int):
    row = migrations.run(migration_id, inputs.acting_as(json_body(optional=True), "requested_by", principal().username))
    return migrations.as_json(row), 202


@bp.post("/v1/migrations/<int:migration_id>/preflight")
@operator  # the step before Run; it changes nothing, so it writes no audit entry
def preflight_migration(migration_id: int):
    return preflight.report(migrations.get(migration_id))


@bp.get("/v1/migrations/<int:migration_id>/status")
@viewer
def migration_status(migration_id: int):
    return migrations.status_json(migrations.get(migration_id))


@bp.post("/v1/migrations/<int:migration_id>/cancel")
@operator
def cancel_migration(migration_id: int):
    return migrations.as_json(migrations.cancel(migration_id)), 202

