"""Runs record how their test code was confined.

Revision ID: 0004_run_sandbox
Revises: 0003_accounts
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = "0004_run_sandbox"
down_revision = "0003_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("sandbox_mode", sa.String(32), nullable=True))
        batch.add_column(sa.Column("sandbox_detail", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("sandbox_detail")
        batch.drop_column("sandbox_mode")
