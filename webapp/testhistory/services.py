"""Reading tests and their history: the tests list reads only ``test_stats`` (one row per test), a test's
history walks ``ix_test_results_nodeid`` / ``ix_test_results_nodeid_env`` backwards. Read-only."""
from __future__ import annotations

from typing import Any, Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import defer

from ..domain import testhistory as rules
from ..domain.errors import NotFound
from ..extensions import db
from ..models import TestResultRow, TestStatRow
from ..pagination import Page, paginate

ORDERS = {
    "nodeid": (TestStatRow.nodeid,),
    "flaky": (TestStatRow.flaky_score.desc(), TestStatRow.nodeid),
    "slowest": (TestStatRow.median_duration.desc().nulls_last(), TestStatRow.nodeid),
    "failing": (TestStatRow.failed.desc(), TestStatRow.nodeid),
}


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_page(page: int, per_page: int, filters: Mapping[str, Any] | None = None) -> Page:
    """One page of tests: ``q`` a part of the nodeid (any case), ``flaky`` true/false, ``sort`` one of
    ``domain.testhistory.SORTS`` (default: by nodeid)."""
    filters = filters or {}
    stmt = select(TestStatRow).order_by(*ORDERS[filters.get("sort") or "nodeid"])
    if filters.get("q"):
        stmt = stmt.where(func.lower(TestStatRow.nodeid).like(f"%{_escaped(filters['q'].lower())}%", escape="\\"))
    if filters.get("flaky") is True:
        stmt = stmt.where(TestStatRow.flaky_score >= rules.FLAKY_THRESHOLD)
    elif filters.get("flaky") is False:
        stmt = stmt.where(TestStatRow.flaky_score < rules.FLAKY_THRESHOLD)
    if filters.get("sort") == "failing":
        stmt = stmt.where(TestStatRow.failed > 0)
    return paginate(db.session, stmt, page, per_page)


def as_json(row: TestStatRow) -> dict:
    return {"nodeid": row.nodeid, "runs": row.runs, "passed": row.passed, "failed": row.failed,
            "skipped": row.skipped, "pass_rate": row.pass_rate, "flaky_score": row.flaky_score,
            "last_outcome": row.last_outcome,
            "last_run_id": row.last_run_id, "median_duration": row.median_duration}


def page_json(page: Page) -> dict:
    return page.as_json(as_json)


def _storable(nodeid: str) -> bool:
    """Could a run have recorded this nodeid? (At most 1000 characters, no NUL: PostgreSQL refuses NUL.)"""
    return len(nodeid) <= 1000 and "\x00" not in nodeid


def get(nodeid: str) -> TestStatRow:
    """The test's stats; 404 for a test no run recorded. A test only in ``test_results`` (no stats row yet)
    gets empty stats."""
    row = db.session.get(TestStatRow, nodeid) if _storable(nodeid) else None
    if row is None:
        if not _storable(nodeid) or db.session.scalar(
                select(TestResultRow.id).where(TestResultRow.nodeid == nodeid).limit(1)) is None:
            raise NotFound("test")
        row = TestStatRow(nodeid=nodeid, runs=0, passed=0, failed=0, skipped=0, recent="", durations=[],
                          flaky_score=0.0)
    return row


def history(nodeid: str, environment_id: int | None = None, limit: int = rules.HISTORY_LIMIT
            ) -> list[TestResultRow]:
    """The test's latest results, newest first (404 for an unknown test)."""
    stmt = select(TestResultRow).options(defer(TestResultRow.details)).where(TestResultRow.nodeid == nodeid)  # 64 KiB
    if environment_id is not None:
        stmt = stmt.where(TestResultRow.environment_id == environment_id)
    rows = list(db.session.scalars(stmt.order_by(TestResultRow.id.desc()).limit(limit))) if _storable(nodeid) else []
    if not rows:
        get(nodeid)  # 404 when the test is unknown; an empty history on another environment is fine
    return rows


def history_item(row: TestResultRow) -> dict:
    return {"run_id": row.run_id, "environment_id": row.environment_id, "outcome": row.outcome,
            "duration": row.duration, "message": row.message,
            "finished_at": row.finished_at.isoformat() if row.finished_at else None}


def history_json(nodeid: str, environment_id: int | None, limit: int) -> dict:
    return {"items": [history_item(r) for r in history(nodeid, environment_id, limit)]}
