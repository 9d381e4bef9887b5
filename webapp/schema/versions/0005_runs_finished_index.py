"""An index on runs.finished_at: GET /metrics reads the runs finished in the last hour without a full scan.

Revision ID: 0005_runs_finished_index
Revises: 0004_run_sandbox
Create Date: 2026-12-01
"""
from alembic import op

revision = "0005_runs_finished_index"
down_revision = "0004_run_sandbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_runs_finished", "runs", ["finished_at"])


def downgrade() -> None:
    op.drop_index("ix_runs_finished", table_name="runs")
