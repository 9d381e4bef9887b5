"""Migrations validated by a test run (phase, validation, validation_run_id; runs.migration_id) and waves.

Revision ID: 0007_validation_and_waves
Revises: 0006_uploads_in_database
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = "0007_validation_and_waves"
down_revision = "0006_uploads_in_database"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("migrations") as batch:
        batch.add_column(sa.Column("phase", sa.String(16), nullable=True))
        batch.add_column(sa.Column("validation", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("validation_run_id", sa.Integer(), nullable=True))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("migration_id", sa.Integer(), nullable=True))
        batch.create_index("ix_runs_migration_id", ["migration_id"])
    op.create_table(
        "waves",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("max_parallel", sa.Integer(), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stop_on_error", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_waves_state", "waves", ["state"])
    op.create_table(
        "wave_migrations",
        sa.Column("wave_id", sa.Integer(), sa.ForeignKey("waves.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("migration_id", sa.Integer(), sa.ForeignKey("migrations.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
    )
    op.create_index("ix_wave_migrations_migration", "wave_migrations", ["migration_id"])


def downgrade() -> None:
    op.drop_index("ix_wave_migrations_migration", table_name="wave_migrations")
    op.drop_table("wave_migrations")
    op.drop_index("ix_waves_state", table_name="waves")
    op.drop_table("waves")
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_migration_id")
        batch.drop_column("migration_id")
    with op.batch_alter_table("migrations") as batch:
        batch.drop_column("validation_run_id")
        batch.drop_column("validation")
        batch.drop_column("phase")
