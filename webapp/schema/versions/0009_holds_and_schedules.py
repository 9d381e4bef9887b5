"""Environments can be held (hold_by, hold_reason, hold_until); schedules start runs (runs.schedule_id).

Revision ID: 0009_holds_and_schedules
Revises: 0008_test_results
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = "0009_holds_and_schedules"
down_revision = "0008_test_results"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("environments") as batch:
        batch.add_column(sa.Column("hold_by", sa.String(64), nullable=True))
        batch.add_column(sa.Column("hold_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("hold_until", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("schedule_id", sa.Integer(), nullable=True))
        batch.create_index("ix_runs_schedule_id", ["schedule_id"])
    op.create_table(
        "schedules",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("cron", sa.String(128), nullable=False),
        sa.Column("test_files", sa.JSON(), nullable=False),
        sa.Column("environment_id", sa.Integer(), nullable=True),
        sa.Column("pool", sa.String(32), nullable=True),
        sa.Column("priority", sa.String(8), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_schedules_due", "schedules", ["enabled", "next_due_at"])


def downgrade() -> None:
    op.drop_index("ix_schedules_due", table_name="schedules")
    op.drop_table("schedules")
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_schedule_id")
        batch.drop_column("schedule_id")
    with op.batch_alter_table("environments") as batch:
        batch.drop_column("hold_until")
        batch.drop_column("hold_reason")
        batch.drop_column("hold_by")
