"""Indexes on the primary keys that databases of releases before them lack.

Revision ID: 0002_missing_indexes
Revises: 0001_baseline
Create Date: 2026-12-01

ix_workloads_id, ix_migrations_id and ix_runs_id were added to the models after the tables existed,
and create_all never adds an index to an existing table. A database made since has them already
(revision 0001 creates them too): each is created only if missing.
"""
from alembic import op

revision = "0002_missing_indexes"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None

INDEXES = {"ix_workloads_id": "workloads", "ix_migrations_id": "migrations", "ix_runs_id": "runs"}


def upgrade() -> None:
    for name, table in INDEXES.items():
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} (id)")


def downgrade() -> None:
    pass  # the indexes belong to the baseline: they stay
