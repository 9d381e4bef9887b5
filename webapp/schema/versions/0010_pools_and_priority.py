"""Pools and priorities: environments get labels; a run may ask for a pool instead of an environment
(runs.pool, runs.environment_id becomes nullable until it is given one) and has a priority.

Revision ID: 0010_pools_and_priority
Revises: 0009_holds_and_schedules
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = "0010_pools_and_priority"
down_revision = "0009_holds_and_schedules"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("environments") as batch:
        batch.add_column(sa.Column("labels", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("pool", sa.String(32), nullable=True))
        batch.add_column(sa.Column("priority", sa.String(8), nullable=False, server_default="normal"))
        batch.alter_column("environment_id", existing_type=sa.Integer(), nullable=True)
        batch.create_index("ix_runs_pool_state", ["pool", "state", "id"])


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_pool_state")
        batch.alter_column("environment_id", existing_type=sa.Integer(), nullable=False)
        batch.drop_column("priority")
        batch.drop_column("pool")
    with op.batch_alter_table("environments") as batch:
        batch.drop_column("labels")
