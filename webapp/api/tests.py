"""JSON endpoints for tests: the list (search, flaky filter, sorts) and a test's history."""
from __future__ import annotations

from flask import request

from .. import inputs
from ..auth import viewer
from ..testhistory import services as tests
from . import bp


@bp.get("/v1/tests")
@viewer
def list_tests():
    return tests.page_json(tests.list_page(*inputs.page(request.args), inputs.test_filters(request.args)))


@bp.get("/v1/tests/<path:nodeid>/history")
@viewer
def test_history(nodeid: str):
    return tests.history_json(nodeid, **inputs.history_args(request.args))
