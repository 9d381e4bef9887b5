"""JSON endpoints for waves: list, create, read, pause, resume, cancel."""
from __future__ import annotations

from flask import request, url_for

from .. import inputs
from ..auth import operator, principal, viewer
from ..waves import services as waves
from . import bp
from .helpers import created, json_body


@bp.get("/v1/waves")
@viewer
def list_waves():
    return waves.page_json(waves.list_page(*inputs.page(request.args)))


@bp.post("/v1/waves")
@operator
def create_wave():
    row = waves.create(json_body(), principal().username)
    return created(waves.as_json(row), url_for(".get_wave", wave_id=row.id))


@bp.get("/v1/waves/<int:wave_id>")
@viewer
def get_wave(wave_id: int):
    return waves.as_json(waves.get(wave_id))


@bp.post("/v1/waves/<int:wave_id>/pause")
@operator
def pause_wave(wave_id: int):
    return waves.as_json(waves.pause(wave_id))


@bp.post("/v1/waves/<int:wave_id>/resume")
@operator
def resume_wave(wave_id: int):
    return waves.as_json(waves.resume(wave_id))


@bp.post("/v1/waves/<int:wave_id>/cancel")
@operator
def cancel_wave(wave_id: int):
    return waves.as_json(waves.cancel(wave_id))
