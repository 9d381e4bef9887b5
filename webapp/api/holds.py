"""JSON endpoints for environment holds: hold (or replace the hold), release."""
from __future__ import annotations

from ..auth import operator, principal
from ..environments import holds, services as environments
from . import bp
from .helpers import json_body


@bp.post("/v1/environments/<int:environment_id>/hold")
@operator
def hold_environment(environment_id: int):
    return environments.as_json(holds.hold(environment_id, json_body(), principal().username, principal()))


@bp.post("/v1/environments/<int:environment_id>/release")
@operator
def release_environment(environment_id: int):
    return environments.as_json(holds.release(environment_id, principal()))
