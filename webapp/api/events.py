"""JSON endpoints for events."""
from __future__ import annotations

from flask import request, url_for

from .. import inputs
from ..events import services as events
from ..auth import operator, principal, viewer
from . import bp
from .helpers import created, json_body


@bp.get("/v1/events")
@viewer
def list_events():
    page = events.list_page(*inputs.page(request.args), inputs.event_filters(request.args))
    return page.as_json(events.as_json)


@bp.post("/v1/events")
@operator
def create_event():
    row = events.create(json_body())
    return created(events.as_json(row), url_for(".get_event", event_id=row.id))


@bp.get("/v1/events/<event_id>")
@viewer
def get_event(event_id: str):
    return events.as_json(events.get(event_id))


@bp.route("/v1/events/<event_id>", methods=["PUT", "PATCH"])
@operator
def update_event(event_id: str):
    return events.as_json(events.update(event_id, json_body(), principal()))
