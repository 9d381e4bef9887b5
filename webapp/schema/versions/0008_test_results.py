"""Each test's result in its own row (test_results) and each test's history in one (test_stats).

The results the runs of the last release kept in ``runs.tests`` (nodeid, outcome, duration) are copied into
``test_results``; ``runs.tests`` stays as it was. Then ``test_stats`` is filled from them (the rules of
``webapp.domain.testhistory``), so the history of old runs counts.

Revision ID: 0008_test_results
Revises: 0007_validation_and_waves
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = "0008_test_results"
down_revision = "0007_validation_and_waves"
branch_labels = None
depends_on = None

runs = sa.table("runs", sa.column("id", sa.Integer), sa.column("environment_id", sa.Integer),
                sa.column("tests", sa.JSON), sa.column("finished_at", sa.DateTime(timezone=True)))
OUTCOMES = {"passed", "failed", "error", "skipped", "xfailed", "xpassed"}


def upgrade() -> None:
    op.create_table(
        "test_results",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("nodeid", sa.String(1000), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("duration", sa.Float(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("details", sa.Text(), nullable=True),
        sa.Column("file", sa.String(512), nullable=True),
        sa.Column("line", sa.Integer(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_test_results_run", "test_results", ["run_id", "outcome"])
    op.create_index("ix_test_results_nodeid", "test_results", ["nodeid", "id"])
    op.create_index("ix_test_results_nodeid_env", "test_results", ["nodeid", "environment_id", "id"])
    op.create_table(
        "test_stats",
        sa.Column("nodeid", sa.String(1000), primary_key=True),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("passed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("recent", sa.String(30), nullable=False),
        sa.Column("durations", sa.JSON(), nullable=False),
        sa.Column("pass_rate", sa.Float(), nullable=True),
        sa.Column("flaky_score", sa.Float(), nullable=False),
        sa.Column("median_duration", sa.Float(), nullable=True),
        sa.Column("last_outcome", sa.String(16), nullable=True),
        sa.Column("last_run_id", sa.Integer(), nullable=True),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_test_stats_flaky", "test_stats", ["flaky_score"])
    op.create_index("ix_test_stats_failed", "test_stats", ["failed"])
    op.create_index("ix_test_stats_median", "test_stats", ["median_duration"])
    _copy_results()
    _fill_stats()


def _copy_results() -> None:
    """The results runs kept in their JSON column, one row each (a malformed entry is skipped)."""
    connection = op.get_bind()
    results = sa.table("test_results", *(sa.column(n) for n in (
        "run_id", "environment_id", "nodeid", "outcome", "duration", "finished_at")))
    rows = []
    for run in connection.execute(sa.select(runs.c.id, runs.c.environment_id, runs.c.tests, runs.c.finished_at)
                                  .where(runs.c.tests.is_not(None)).order_by(runs.c.id)):
        for test in run.tests if isinstance(run.tests, list) else []:
            nodeid = test.get("nodeid") if isinstance(test, dict) else None
            if not isinstance(nodeid, str) or not nodeid or test.get("outcome") not in OUTCOMES:
                continue
            duration = test.get("duration")
            rows.append({"run_id": run.id, "environment_id": run.environment_id, "nodeid": nodeid[:1000],
                         "outcome": test["outcome"], "finished_at": run.finished_at,
                         "duration": float(duration) if isinstance(duration, (int, float)) else 0.0})
        if len(rows) >= 5000:
            connection.execute(results.insert(), rows)
            rows = []
    if rows:
        connection.execute(results.insert(), rows)


def _fill_stats() -> None:
    """One test_stats row per test of the copied results, folded oldest first (one pass over test_results)."""
    from webapp.domain.testhistory import Summary

    connection = op.get_bind()
    results = sa.table("test_results", *(sa.column(n) for n in ("id", "run_id", "nodeid", "outcome", "duration")),
                       sa.column("finished_at", sa.DateTime(timezone=True)))
    stats = sa.table("test_stats", *(sa.column(n) for n in (
        "nodeid", "runs", "passed", "failed", "skipped", "recent", "pass_rate", "flaky_score", "median_duration",
        "last_outcome", "last_run_id")), sa.column("durations", sa.JSON), sa.column("last_at", sa.DateTime(timezone=True)))
    rows, summary = [], None
    for r in connection.execute(sa.select(results.c.nodeid, results.c.outcome, results.c.duration,
                                          results.c.run_id, results.c.finished_at)
                                .order_by(results.c.nodeid, results.c.id)):
        if summary is None or summary.nodeid != r.nodeid:
            if summary is not None:
                rows.append(summary.row())
            summary = Summary(r.nodeid)
        summary.add(r.outcome, r.duration, r.run_id, r.finished_at)
        if len(rows) >= 2000:
            connection.execute(stats.insert(), rows)
            rows = []
    if summary is not None:
        rows.append(summary.row())
    if rows:
        connection.execute(stats.insert(), rows)


def downgrade() -> None:
    op.drop_index("ix_test_stats_median", table_name="test_stats")
    op.drop_index("ix_test_stats_failed", table_name="test_stats")
    op.drop_index("ix_test_stats_flaky", table_name="test_stats")
    op.drop_table("test_stats")
    op.drop_index("ix_test_results_nodeid_env", table_name="test_results")
    op.drop_index("ix_test_results_nodeid", table_name="test_results")
    op.drop_index("ix_test_results_run", table_name="test_results")
    op.drop_table("test_results")
