"""What the tests pages show: the list with its tabs, a test's page with its history strip and duration chart."""
from __future__ import annotations

from typing import Mapping

from .. import inputs
from ..domain import testhistory as rules
from ..domain.errors import ValidationError
from ..pagination import Page
from . import chart, services

STRIP = 60  # results in a test page's strip and chart
TABS = (("All", {}), ("Flaky", {"flaky": "true", "sort": "flaky"}), ("Slowest", {"sort": "slowest"}),
        ("Most failing", {"sort": "failing"}))
OUTCOME_LABELS = {"passed": "passed", "failed": "failed", "error": "error", "skipped": "skipped",
                  "xfailed": "expected failure", "xpassed": "unexpected pass"}


def index(args: Mapping[str, str]) -> tuple[dict, int]:
    """The list page for ``args`` (the query string), and its status: a refused search or page is shown
    beside its field (422) over an empty list."""
    typed = inputs.filter_args(args, inputs.TEST_FILTERS)
    try:
        filters = inputs.test_filters(args)
        page = services.list_page(*inputs.page(args), filters)
    except ValidationError as exc:
        return {**listing(Page([], 0, 1, inputs.DEFAULT_PER_PAGE), {}, typed), "refused": exc.fields}, 422
    return listing(page, filters, typed), 200


def listing(page: Page, filters: Mapping, typed: Mapping[str, str]) -> dict:
    """The list, the search box (as typed) and the tabs; links keep the search and the tab."""
    sort = filters.get("sort") or "nodeid"
    tabs = [{"label": label, "args": {**({"q": typed["q"]} if typed.get("q") else {}), **args},
             "current": (args.get("sort") or "nodeid") == sort} for label, args in TABS]
    return {"page": page, "keep": page.links(typed), "typed": typed, "tabs": tabs, "flaky": rules.is_flaky,
            "threshold": rules.FLAKY_THRESHOLD, "refused": {}}


def view(nodeid: str, environment_id: int | None) -> dict:
    """A test's page: its stats, its last results (oldest left, newest right) and their durations."""
    row = services.get(nodeid)
    results = list(reversed(services.history(nodeid, environment_id, STRIP)))
    cells = [{"run_id": r.run_id, "outcome": r.outcome, "environment_id": r.environment_id,
              "label": OUTCOME_LABELS.get(r.outcome, r.outcome), "duration": r.duration, "message": r.message,
              "finished_at": r.finished_at} for r in results]
    return {"row": row, "nodeid": nodeid, "cells": cells, "environment_id": environment_id,
            "flaky": rules.is_flaky(row.recent, row.flaky_score), "threshold": rules.FLAKY_THRESHOLD,
            "chart": chart.durations(cells), "newest_first": list(reversed(cells))}
