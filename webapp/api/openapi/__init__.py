"""The OpenAPI 3.1 description of the JSON API, built from small helpers.

Served as ``GET /api/openapi.json`` and, for people, as ``GET /api/docs`` (rendered here, no JavaScript).
The shapes follow the ``as_json`` functions of the services; ``tests/test_openapi.py`` keeps the two in step.
``builders`` makes schemas and answers, ``shapes`` and ``operations`` say what the API takes and does,
``document`` assembles it with who may call what, ``docs`` serves it.
"""
from . import docs  # noqa: F401  (registers its routes on the API blueprint)
