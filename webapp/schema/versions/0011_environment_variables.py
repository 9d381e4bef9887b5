"""Environments that mean something: variables, write-only secrets (encrypted), setup and teardown files;
a run records which variable and secret names it was given and how its setup and teardown went.

Revision ID: 0011_environment_variables
Revises: 0010_pools_and_priority
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = "0011_environment_variables"
down_revision = "0010_pools_and_priority"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("environments") as batch:
        batch.add_column(sa.Column("variables", sa.JSON(), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("secret_names", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("secrets_enc", sa.Text(), nullable=True))
        batch.add_column(sa.Column("setup", sa.String(512), nullable=True))
        batch.add_column(sa.Column("teardown", sa.String(512), nullable=True))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("variable_names", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("secret_names", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("stages", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("stages")
        batch.drop_column("secret_names")
        batch.drop_column("variable_names")
    with op.batch_alter_table("environments") as batch:
        for name in ("teardown", "setup", "secrets_enc", "secret_names", "variables"):
            batch.drop_column(name)
