"""Baseline: the schema of the last release made with create_all (workloads, migrations, runs, events).

Revision ID: 0001_baseline
Revises:
Create Date: 2026-12-01

A database made by that release has no alembic_version table: ``webapp.db.upgrade`` stamps it with
this revision instead of running it. A database of an older release, which lacks some of these tables,
is brought here by this revision with ``existing_tables`` (config attribute) naming the tables it has:
only the missing ones are created.
"""
from alembic import op
import sqlalchemy as sa

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    keep = op.get_context().config.attributes.get("existing_tables", frozenset())

    if "workloads" not in keep:
        op.create_table(
            "workloads",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("ip", sa.String(45), nullable=False),
            sa.Column("username", sa.String(255), nullable=False),
            sa.Column("password_enc", sa.Text(), nullable=False),
            sa.Column("domain", sa.String(255), nullable=False),
            sa.Column("storage", sa.JSON(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("ip"),
        )
        op.create_index("ix_workloads_id", "workloads", ["id"])

    if "migrations" not in keep:
        op.create_table(
            "migrations",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("source_id", sa.Integer(), nullable=False),
            sa.Column("selected", sa.JSON(), nullable=False),
            sa.Column("cloud_type", sa.String(16), nullable=False),
            sa.Column("cloud_username", sa.String(255), nullable=False),
            sa.Column("cloud_password_enc", sa.Text(), nullable=False),
            sa.Column("cloud_domain", sa.String(255), nullable=False),
            sa.Column("target_vm", sa.JSON(), nullable=True),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("error", sa.Text(), nullable=True),
            sa.Column("progress", sa.JSON(), nullable=False),
            sa.Column("cancel_requested", sa.Boolean(), nullable=False),
            sa.Column("job_id", sa.String(64), nullable=True),
            sa.Column("requested_by", sa.String(128), nullable=True),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("id"),
            sa.ForeignKeyConstraint(["source_id"], ["workloads.id"], ondelete="RESTRICT"),
        )
        op.create_index("ix_migrations_source_id", "migrations", ["source_id"])
        op.create_index("ix_migrations_state", "migrations", ["state"])
        op.create_index("ix_migrations_id", "migrations", ["id"])

    if "environments" not in keep:
        op.create_table(
            "environments",
            sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("name", sa.String(64), nullable=False),
            sa.Column("description", sa.Text(), nullable=False),
            sa.Column("enabled", sa.Boolean(), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )

    if "runs" not in keep:
        op.create_table(
            "runs",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("username", sa.String(64), nullable=False),
            sa.Column("environment_id", sa.Integer(), nullable=False),
            sa.Column("test_files", sa.JSON(), nullable=False),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("exit_code", sa.Integer(), nullable=True),
            sa.Column("summary", sa.JSON(), nullable=True),
            sa.Column("tests", sa.JSON(), nullable=True),
            sa.Column("junit_xml", sa.Text(), nullable=True),
            sa.Column("error", sa.Text(), nullable=True),
            sa.Column("lock_token", sa.String(64), nullable=True),
            sa.Column("job_id", sa.String(64), nullable=True),
            sa.Column("cancel_requested", sa.Boolean(), nullable=False),
            sa.Column("log_size", sa.Integer(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("id"),
            sa.ForeignKeyConstraint(["environment_id"], ["environments.id"]),
        )
        op.create_index("ix_runs_username", "runs", ["username"])
        op.create_index("ix_runs_env_state", "runs", ["environment_id", "state", "id"])
        op.create_index("ix_runs_state", "runs", ["state"])
        op.create_index("ix_runs_id", "runs", ["id"])

    if "run_log_chunks" not in keep:
        op.create_table(
            "run_log_chunks",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("run_id", sa.Integer(), nullable=False),
            sa.Column("start", sa.Integer(), nullable=False),
            sa.Column("end", sa.Integer(), nullable=False),
            sa.Column("text", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
        )
        op.create_index("ix_run_log_chunks_run_end", "run_log_chunks", ["run_id", "end"])

    if "events" not in keep:
        op.create_table(
            "events",
            sa.Column("id", sa.String(36), nullable=False),
            sa.Column("user_id", sa.String(128), nullable=False),
            sa.Column("description", sa.Text(), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("source", sa.String(16), nullable=False),
            sa.Column("link", sa.String(512), nullable=True),
            sa.Column("attempts", sa.Integer(), nullable=False),
            sa.Column("last_error", sa.Text(), nullable=True),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index("ix_events_status_queued", "events", ["status", "queued_at"])
        op.create_index("ix_events_user", "events", ["user_id"])
        op.create_index("ix_events_created", "events", ["created_at"])

    if "notifications" not in keep:
        op.create_table(
            "notifications",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("event_id", sa.String(36), nullable=False),
            sa.Column("user_id", sa.String(128), nullable=False),
            sa.Column("text", sa.Text(), nullable=False),
            sa.Column("link", sa.String(512), nullable=True),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("event_id"),
            sa.ForeignKeyConstraint(["event_id"], ["events.id"], ondelete="CASCADE"),
        )
        op.create_index("ix_notifications_user_read", "notifications", ["user_id", "read_at"])


def downgrade() -> None:
    # Dropping a table drops its indexes.
    for name in ("notifications", "events", "run_log_chunks", "runs", "environments", "migrations", "workloads"):
        op.drop_table(name)
