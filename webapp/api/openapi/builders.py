"""Small helpers that build OpenAPI schemas, parameters, bodies and responses."""
from __future__ import annotations

from typing import Any

from ...inputs import DEFAULT_PER_PAGE, MAX_ID, MAX_PER_PAGE


JSON, XML, TEXT, HTML = "application/json", "application/xml", "text/plain", "text/html"
MULTIPART = "multipart/form-data"

Schema = dict[str, Any]


# --- schema helpers --------------------------------------------------------------------------------

def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _typed(kind: str, nullable: bool, **extra) -> Schema:
    return {"type": [kind, "null"] if nullable else kind, **extra}


def string(nullable: bool = False, **extra) -> Schema:
    return _typed("string", nullable, **extra)


def integer(nullable: bool = False, **extra) -> Schema:
    return _typed("integer", nullable, **extra)


def number(nullable: bool = False, **extra) -> Schema:
    return _typed("number", nullable, **extra)


def boolean(**extra) -> Schema:
    return {"type": "boolean", **extra}


def timestamp(nullable: bool = False, **extra) -> Schema:
    return string(nullable, format="date-time", **extra)


def enum(values, nullable: bool = False, **extra) -> Schema:
    values = [getattr(v, "value", v) for v in values]
    return {"type": ["string", "null"] if nullable else "string", "enum": values + [None] * nullable, **extra}


def array(items: Schema, **extra) -> Schema:
    return {"type": "array", "items": items, **extra}


def nullable(schema: Schema) -> Schema:
    """A referenced schema, or null."""
    return {"anyOf": [schema, {"type": "null"}]}


def obj(properties: dict[str, Schema], required: list[str] | None = None, *, closed: bool = True, **extra) -> Schema:
    """An object; by default every property is required and no other is sent (the shape of a response)."""
    schema: Schema = {"type": "object", "properties": properties,
                      "required": list(properties) if required is None else required}
    if closed:
        schema["additionalProperties"] = False
    return {**schema, **{k: v for k, v in extra.items() if v is not None}}


def described(schema: Schema, text: str) -> Schema:
    return {**schema, "description": text}


# --- parameters, bodies, responses -----------------------------------------------------------------

def path_id(name: str, what: str, **schema) -> dict:
    return {"name": name, "in": "path", "required": True, "description": f"The {what}'s id.",
            "schema": integer(minimum=1, maximum=MAX_ID, **schema)}


def query(name: str, schema: Schema, text: str) -> dict:
    return {"name": name, "in": "query", "required": False, "description": text, "schema": schema}


PAGING = [
    query("page", integer(minimum=1, maximum=10**9, default=1), "Page number, from 1."),
    query("per_page", integer(minimum=1, maximum=10**9, default=DEFAULT_PER_PAGE),
          f"Items per page; more than {MAX_PER_PAGE} is served as {MAX_PER_PAGE}."),
]


def json_body(schema: Schema, required: bool = True) -> dict:
    return {"required": required, "content": {JSON: {"schema": schema}}}


def ok(description: str, schema: Schema, media: str = JSON) -> dict:
    return {"description": description, "content": {media: {"schema": schema}}}


def created(description: str, schema: Schema) -> dict:
    return {**ok(description, schema), "headers": {"Location": {
        "description": "Where the new resource (or list) is.", "required": True, "schema": string()}}}


NO_CONTENT = {"description": "Done; no body."}

# The error codes behind each status, as the error handlers and services raise them.
ERROR_TEXT = {
    400: "The body is not a JSON object (`bad_json`).",
    401: "No valid `Authorization: Bearer <token>`: missing, malformed, unknown, expired or revoked "
         "(`unauthorized`).",
    403: "Your role may not do this (`forbidden`).",
    404: "No such resource (`not_found`).",
    409: "Conflicts with the current state.",
    413: "The request (2 MiB) or upload (1 MiB) is too large (`too_large`).",
    415: "The body is not of the one media type this operation takes (`unsupported_media_type`).",
    422: "Invalid input; `fields` says which and why.",
    429: "Too many failed sign-ins for this username or address (`too_many_attempts`): wait `Retry-After` seconds.",
}


def error(status: int, codes: list[str], text: str | None = None) -> dict:
    schema = {"allOf": [ref("Error"), {"properties": {"error": {"properties": {"code": {"enum": codes}}}}}]}
    return ok(text or ERROR_TEXT[status], schema)


def errors(*statuses: int, **codes: list[str]) -> dict:
    """Error responses by status; the codes of 409 and 422 differ by operation (``c409=[...]``, ``c422=[...]``)."""
    defaults = {400: ["bad_json"], 401: ["unauthorized"], 403: ["forbidden"], 404: ["not_found"],
                409: ["invalid_state"], 413: ["too_large"], 415: ["unsupported_media_type"],
                422: ["validation_error"], 429: ["too_many_attempts"]}
    return {str(s): error(s, codes.get(f"c{s}", defaults[s]), codes.get(f"t{s}")) for s in statuses}


def operation(op_id: str, tag: str, summary: str, responses: dict, *, params=(), body=None, description=None) -> dict:
    op = {"operationId": op_id, "tags": [tag], "summary": summary, "responses": responses}
    if description:
        op["description"] = description
    if params:
        op["parameters"] = list(params)
    if body:
        op["requestBody"] = body
    return op
