"""Small request/response helpers shared by the API views."""
from __future__ import annotations

from typing import Any

from flask import jsonify, request

from ..domain.errors import BadJson


def json_body(optional: bool = False) -> Any:
    """The request's JSON document; 400 ``bad_json`` when it is missing or malformed."""
    if optional and not request.get_data():
        return {}
    data = request.get_json(force=True, silent=True)
    if data is None:
        raise BadJson("The request body must be a valid JSON document.")
    if not isinstance(data, dict):
        raise BadJson("The request body must be a JSON object.")
    return data


def created(body: dict, location: str):
    response = jsonify(body)
    response.status_code = 201
    response.headers["Location"] = location
    return response


def no_content():
    return "", 204
