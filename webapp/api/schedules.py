"""JSON endpoints for schedules: list, create, read, change, delete."""
from __future__ import annotations

from flask import request, url_for

from .. import inputs
from ..auth import operator, principal, viewer
from ..schedules import services as schedules
from . import bp
from .helpers import created, json_body, no_content


@bp.get("/v1/schedules")
@viewer
def list_schedules():
    return schedules.page_json(schedules.list_page(*inputs.page(request.args)))


@bp.post("/v1/schedules")
@operator
def create_schedule():
    row = schedules.create(json_body(), principal().username)
    return created(schedules.as_json(row), url_for(".get_schedule", schedule_id=row.id))


@bp.get("/v1/schedules/<int:schedule_id>")
@viewer
def get_schedule(schedule_id: int):
    return schedules.as_json(schedules.get(schedule_id))


@bp.patch("/v1/schedules/<int:schedule_id>")
@operator
def update_schedule(schedule_id: int):
    who = principal()
    return schedules.as_json(schedules.update(schedule_id, json_body(), who.username, who.role))


@bp.delete("/v1/schedules/<int:schedule_id>")
@operator
def delete_schedule(schedule_id: int):
    who = principal()
    schedules.delete(schedule_id, who.username, who.role)
    return no_content()
