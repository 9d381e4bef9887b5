"""Bulk import of workloads: a CSV file or a JSON list → every workload created, or none."""
from __future__ import annotations

from flask import request, url_for

from ..auth import access
from ..domain.accounts import Role
from ..domain.errors import BadJson
from ..inputs import imports
from ..workloads import services as workloads
from . import bp
from .helpers import created

IMPORT_TYPES = ("application/json", "text/csv", "multipart/form-data")  # the first is the OpenAPI's example


def _json_list():
    data = request.get_json(force=True, silent=True)
    if data is None:
        raise BadJson("The request body must be a valid JSON document: a list of workloads.")
    return data


@bp.post("/v1/workloads/import")
@access(Role.OPERATOR, accepts=IMPORT_TYPES)
def import_workloads():
    batch = imports.body_rows(request.mimetype, request.get_data, request.files, _json_list)
    return created({"created": workloads.import_batch(batch)}, url_for(".list_workloads"))
