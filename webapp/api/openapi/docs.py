"""The document as a page for people (``GET /api/docs``, rendered here, no JavaScript) and as JSON."""
from __future__ import annotations

import re
from flask import render_template
from markupsafe import Markup, escape

from .. import bp
from ...auth import public
from ...inputs import MAX_ID
from .builders import Schema
from .document import _document, document


# --- the page --------------------------------------------------------------------------------------

METHODS = ("get", "post", "put", "patch", "delete")


def type_text(schema: Schema | None) -> str:
    """A short, readable type: ``string | null``, ``array of Workload``, ``Error (invalid_state)``."""
    if not schema:
        return "any"
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "allOf" in schema:
        base = type_text(schema["allOf"][0])
        codes = schema["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"]
        return f"{base} ({', '.join(codes)})"
    if "anyOf" in schema:
        return " | ".join(type_text(s) for s in schema["anyOf"])
    if "enum" in schema:
        return " | ".join("null" if v is None else f'"{v}"' for v in schema["enum"])
    kind = schema.get("type", "object")
    kinds = kind if isinstance(kind, list) else [kind]
    text = " | ".join("array of " + type_text(schema.get("items")) if k == "array" else k for k in kinds)
    if schema.get("format"):
        text += f" ({schema['format']})"
    return text


def limits_text(schema: Schema) -> str:
    words = {"minimum": "≥ {}", "maximum": "≤ {}", "minLength": "length ≥ {}", "maxLength": "length ≤ {}",
             "minItems": "≥ {} items", "maxItems": "≤ {} items", "default": "default {}"}
    parts = [text.format("2^31 - 1" if schema[key] == MAX_ID else schema[key])
             for key, text in words.items() if key in schema]
    if schema.get("uniqueItems"):
        parts.append("unique")
    return ", ".join(parts)


def fields(schema: Schema, prefix: str = "") -> list[dict]:
    """The rows of a schema's table: nested inline objects flattened as ``target.cloud_type``."""
    rows = []
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        item = prop.get("items", {}) if prop.get("type") == "array" else {}
        rows.append({"name": prefix + name, "type": type_text(prop), "required": name in required,
                     "limits": limits_text(prop), "description": prop.get("description", "")})
        if prop.get("type") == "object" and "properties" in prop:
            rows += fields(prop, f"{prefix}{name}.")
        elif item.get("type") == "object" and "properties" in item:
            rows += fields(item, f"{prefix}{name}[].")
    return rows


def access_text(doc: dict, op: dict) -> str:
    """Who may call an operation, for people: ``Open`` or ``operator role · bearerAuth``."""
    security = op.get("security", doc.get("security", []))
    if not security:
        return "Open: no token needed."
    schemes = " or ".join(" + ".join(requirement) for requirement in security)
    return f"{op['x-role'].capitalize()} role or higher; `{schemes}`." if schemes else "Open: no token needed."


def _endpoints(doc: dict) -> list[dict]:
    endpoints = []
    for path, item in doc["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            body = None
            if "requestBody" in op:
                media, content = next(iter(op["requestBody"]["content"].items()))
                body = {"media": media, "type": type_text(content["schema"]),
                        "required": op["requestBody"].get("required", False)}
            responses = []
            for status, response in op["responses"].items():
                media, content = next(iter(response.get("content", {}).items()), (None, {}))
                responses.append({"status": status, "description": response["description"], "media": media,
                                  "type": type_text(content.get("schema")) if media else "",
                                  "headers": sorted(response.get("headers", {}))})
            endpoints.append({
                "method": method.upper(), "path": path, "id": op["operationId"], "tag": op["tags"][0],
                "summary": op["summary"], "description": op.get("description", ""), "body": body,
                "access": access_text(doc, op),
                "params": [{"name": p["name"], "in": p["in"], "required": p.get("required", False),
                            "type": type_text(p["schema"]), "limits": limits_text(p["schema"]),
                            "description": p.get("description", "")} for p in op.get("parameters", [])],
                "responses": responses,
            })
    return endpoints


def linker(names):
    """Type text as HTML, each schema name a link to its table further down."""
    pattern = re.compile(r"\b(" + "|".join(sorted(names, key=len, reverse=True)) + r")\b")

    def link(text: str) -> Markup:
        return Markup(pattern.sub(r'<a href="#schema-\1">\1</a>', str(escape(text))))

    return link


def prose(text: str) -> Markup:
    """A description as HTML: `code` spans become <code>, everything else is escaped."""
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape(text or ""))))


@bp.get("/openapi.json")
@public
def openapi_json():
    return document()


@bp.get("/docs")
@public
def docs():
    return render_template("api/docs.html", **_docs_page(_document()))


def _docs_page(doc: dict) -> dict:
    """What the readable API page shows: the endpoints by tag, the models, the security schemes."""
    endpoints = _endpoints(doc)
    tags = [t["name"] for t in doc["tags"]]
    groups = [(tag, [e for e in endpoints if e["tag"] == tag]) for tag in tags]
    models = [{"name": name, "type": type_text(s), "description": s.get("description", ""), "fields": fields(s),
               "closed": s.get("additionalProperties") is False} for name, s in doc["components"]["schemas"].items()]
    schemes = [{"name": name, **scheme} for name, scheme in doc["components"]["securitySchemes"].items()]
    return {"info": doc["info"], "version": doc["openapi"], "groups": groups, "models": models, "schemes": schemes,
            "schema_link": linker(doc["components"]["schemas"]), "prose": prose}
