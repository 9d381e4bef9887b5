"""Keeping ``test_stats`` up to date as runs end, and the badges of a run's tests.

``update(session, run_id)`` is called inside the run's final transaction, right after the run's rows were
inserted into ``test_results`` (flushed, not committed). It reads the run's results and the existing stats of
its tests in two queries, folds the results in Python (``domain.testhistory.Summary``) and writes the rows in
two bulk statements. Two runs ending at once never lose an update: on SQLite the run's transaction already
holds the database's write lock; on PostgreSQL ``update`` first takes one transaction-scoped advisory lock,
so the stats updates of runs that end together take turns (each a few ms) until each transaction ends.
"""
from __future__ import annotations

from sqlalchemy import and_, bindparam, insert, select, text, update as sql_update
from sqlalchemy.orm import Session, aliased

from ..domain import testhistory as rules
from ..models import TestResultRow, TestStatRow

LOCK_KEY = 0x7E57_5747  # pg_advisory_xact_lock's key: "test stats"
COLUMNS = ("runs", "passed", "failed", "skipped", "recent", "durations", "last_run_id")  # what the fold reads
STATS = TestStatRow.__table__
WRITTEN = ("runs", "passed", "failed", "skipped", "recent", "durations", "last_outcome", "last_run_id", "last_at",
           "pass_rate", "flaky_score", "median_duration")
UPDATE = sql_update(STATS).where(STATS.c.nodeid == bindparam("key")).values({c: bindparam(c) for c in WRITTEN})


def _lock(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})


def update(session: Session, run_id: int) -> None:
    """Fold run ``run_id``'s results (already in ``test_results``) into its tests' ``test_stats`` rows.
    Idempotent: a test whose stats already end with this run is left alone."""
    results = session.execute(
        select(TestResultRow.nodeid, TestResultRow.outcome, TestResultRow.duration, TestResultRow.finished_at)
        .where(TestResultRow.run_id == run_id).order_by(TestResultRow.id)).all()
    if not results:
        return
    _lock(session)
    nodeids = sorted({r.nodeid for r in results})
    known = {}
    for start in range(0, len(nodeids), 900):  # under any database's limit of bound parameters
        chunk = nodeids[start:start + 900]
        known.update({row.nodeid: row for row in session.execute(
            select(TestStatRow.nodeid, *(getattr(TestStatRow, c) for c in COLUMNS))
            .where(TestStatRow.nodeid.in_(chunk)))})
    summaries: dict[str, rules.Summary] = {}
    for r in results:
        summary = summaries.get(r.nodeid)
        if summary is None:
            row = known.get(r.nodeid)
            if row is not None and row.last_run_id == run_id:
                continue  # already counted
            summary = summaries[r.nodeid] = rules.Summary(
                r.nodeid, **{c: getattr(row, c) for c in COLUMNS}) if row is not None else rules.Summary(r.nodeid)
            summary.recent, summary.durations = summary.recent or "", list(summary.durations or [])
        summary.add(r.outcome, r.duration, run_id, r.finished_at)
    fresh = [s.row() for n, s in summaries.items() if n not in known]
    changed = [s.row() for n, s in summaries.items() if n in known]
    if fresh:
        session.execute(insert(STATS), fresh)
    if changed:
        _update_rows(session, changed)


def _update_rows(session: Session, rows: list[dict]) -> None:
    """One executemany of the UPDATE. On SQLite straight to the DBAPI, each value through its column type's own
    bind processor (what ``session.execute(UPDATE, rows)`` does, without SQLAlchemy building each row's
    parameters: that was half the time of 500 rows); elsewhere (psycopg adapts JSON itself) through Core."""
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name != "sqlite":
        session.execute(UPDATE, [{**row, "key": row["nodeid"]} for row in rows])
        return
    compiled = UPDATE.compile(dialect=dialect)
    processors = {name: STATS.c[name].type.bind_processor(dialect) for name in WRITTEN}
    processors["key"] = STATS.c.nodeid.type.bind_processor(dialect)
    prepared = []
    for row in rows:
        values = {**{name: row[name] for name in WRITTEN}, "key": row["nodeid"]}
        for name, process in processors.items():
            if process is not None:
                values[name] = process(values[name])
        prepared.append(tuple(values[name] for name in compiled.positiontup) if compiled.positional else values)
    connection.exec_driver_sql(compiled.string, prepared)


def flags(session: Session, run_id: int) -> dict[str, dict]:
    """``{nodeid: {"flaky": bool, "new_failure": bool}}`` for run ``run_id``'s tests. Flaky: from the test's
    stats. New failure: failed (or error) in this run, and passed (or xpassed) the last time it ran (skips
    left out) in an earlier run on the same environment."""
    current = session.execute(select(TestResultRow.nodeid, TestResultRow.outcome, TestResultRow.id,
                                     TestResultRow.environment_id)
                              .where(TestResultRow.run_id == run_id)).all()
    if not current:
        return {}
    nodeids = sorted({r.nodeid for r in current})
    stats = {}
    for start in range(0, len(nodeids), 900):
        stats.update({n: (recent, score) for n, recent, score in session.execute(
            select(TestStatRow.nodeid, TestStatRow.recent, TestStatRow.flaky_score)
            .where(TestStatRow.nodeid.in_(nodeids[start:start + 900])))})
    previous = _previous_outcomes(session, run_id)
    found = {}
    for r in current:
        recent, score = stats.get(r.nodeid, ("", 0.0))
        found[r.nodeid] = {"flaky": rules.is_flaky(recent, score),
                           "new_failure": rules.is_new_failure(r.outcome, previous.get(r.nodeid))}
    return found


def _previous_outcomes(session: Session, run_id: int) -> dict[str, str | None]:
    """For each test that failed in the run: its outcome the last time it ran before, on the same environment
    (one correlated subquery per failure, each a short walk down ``ix_test_results_nodeid_env``)."""
    cur, prev = aliased(TestResultRow), aliased(TestResultRow)
    before = (select(prev.outcome)
              .where(and_(prev.nodeid == cur.nodeid, prev.environment_id == cur.environment_id,
                          prev.run_id < cur.run_id, prev.outcome.not_in(rules.IGNORED_OUTCOMES)))
              .order_by(prev.id.desc()).limit(1).correlate(cur).scalar_subquery())
    return dict(session.execute(select(cur.nodeid, before).where(
        cur.run_id == run_id, cur.outcome.in_(rules.FAILED_OUTCOMES))).all())
