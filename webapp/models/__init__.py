"""Tables. Rows only: the rules live in ``webapp.domain``."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, LargeBinary, String, Text, select, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Base, utcnow


class WorkloadRow(Base):
    __tablename__ = "workloads"
    # A narrow index on the key lets deep pages be found without reading whole rows (SQLite).
    __table_args__ = (Index("ix_workloads_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ip: Mapped[str] = mapped_column(String(45), unique=True)  # the database keeps IPs unique
    username: Mapped[str] = mapped_column(String(255))
    password_enc: Mapped[str] = mapped_column(Text)
    domain: Mapped[str] = mapped_column(String(255), default="")
    storage: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MigrationRow(Base):
    __tablename__ = "migrations"
    __table_args__ = (Index("ix_migrations_state", "state"), Index("ix_migrations_id", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("workloads.id", ondelete="RESTRICT"), index=True)
    selected: Mapped[list] = mapped_column(JSON)
    cloud_type: Mapped[str] = mapped_column(String(16))
    cloud_username: Mapped[str] = mapped_column(String(255))
    cloud_password_enc: Mapped[str] = mapped_column(Text)
    cloud_domain: Mapped[str] = mapped_column(String(255), default="")
    target_vm: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="not_started")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    progress: Mapped[list] = mapped_column(JSON, default=list)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    job_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    requested_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    queued_at: Mapped[datetime | None] = mapped_column(nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # Validation (issue 11): ``{"test_files": [...], "environment_id": n}`` or None; while the target is tested
    # ``phase`` is "validating" and ``validation_run_id`` names the run (phase "copying" while copying).
    phase: Mapped[str | None] = mapped_column(String(16), nullable=True)
    validation: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    validation_run_id: Mapped[int | None] = mapped_column(nullable=True)

    source: Mapped[WorkloadRow] = relationship(lazy="raise")


class EnvironmentRow(Base):
    """A shared test environment, 1..100; exclusive use is enforced by a Redis lock, not here."""

    __tablename__ = "environments"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # A hold (issue 13): no new run starts here until ``hold_until`` or a release.
    hold_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    hold_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    hold_until: Mapped[datetime | None] = mapped_column(nullable=True)
    # Pools (issue 13): a run may ask for any free enabled environment with one of these labels.
    labels: Mapped[list] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    # Issue 14: what a run here is given. Variables are shown to everyone; secrets are write-only, kept
    # encrypted with the credentials key as one JSON object (``secret_names`` lists them for the pages).
    variables: Mapped[dict] = mapped_column(JSON, default=dict, server_default=text("'{}'"))
    secret_names: Mapped[list] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    secrets_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    setup: Mapped[str | None] = mapped_column(String(512), nullable=True)  # test files run around each run
    teardown: Mapped[str | None] = mapped_column(String(512), nullable=True)


class RunRow(Base):
    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_env_state", "environment_id", "state", "id"), Index("ix_runs_state", "state"),
                      Index("ix_runs_id", "id"), Index("ix_runs_finished", "finished_at"),
                      Index("ix_runs_pool_state", "pool", "state", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    # None while a pool run waits: it is given an environment of its pool when it is dispatched.
    environment_id: Mapped[int | None] = mapped_column(ForeignKey("environments.id"), nullable=True)
    pool: Mapped[str | None] = mapped_column(String(32), nullable=True)  # the label it asked for, if any
    priority: Mapped[str] = mapped_column(String(8), default="normal", server_default="normal")
    test_files: Mapped[list] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    exit_code: Mapped[int | None] = mapped_column(nullable=True)
    summary: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    tests: Mapped[list | None] = mapped_column(JSON, nullable=True)
    junit_xml: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The token of the environment lock this run was given; set when the run is dispatched.
    lock_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    job_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    log_size: Mapped[int] = mapped_column(default=0)
    # How the run's code was confined (set when it starts): "landlock+pidns", "landlock", "pidns", "off", ...
    sandbox_mode: Mapped[str | None] = mapped_column(String(32), nullable=True)
    sandbox_detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The migration this run validates (its target is handed to pytest as CUTOVER_TARGET_* variables).
    migration_id: Mapped[int | None] = mapped_column(nullable=True, index=True)
    schedule_id: Mapped[int | None] = mapped_column(nullable=True, index=True)  # the schedule that started it
    # The names (never the values) of the variables and secrets it was given, and its setup/teardown outcome.
    variable_names: Mapped[list | None] = mapped_column(JSON, nullable=True)
    secret_names: Mapped[list | None] = mapped_column(JSON, nullable=True)
    stages: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column(nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)


class RunLogChunk(Base):
    """A run's output, appended while pytest runs; ``start``/``end`` are character offsets in the whole log."""

    __tablename__ = "run_log_chunks"
    __table_args__ = (Index("ix_run_log_chunks_run_end", "run_id", "end"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    start: Mapped[int]
    end: Mapped[int]
    text: Mapped[str] = mapped_column(Text)


ENVIRONMENT_COUNT = 100


def seed(connection) -> None:
    """Environments 1..100 exist from the first start; a process racing us to it is fine."""
    have = set(connection.scalars(select(EnvironmentRow.id)))
    missing = [{"id": n, "name": f"env-{n}", "description": "", "enabled": True, "updated_at": utcnow()}
               for n in range(1, ENVIRONMENT_COUNT + 1) if n not in have]
    if not missing:
        return
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert

        statement = insert(EnvironmentRow.__table__).on_conflict_do_nothing(index_elements=["id"])
    else:
        statement = EnvironmentRow.__table__.insert().prefix_with("OR IGNORE")
    connection.execute(statement, missing)


class EventRow(Base):
    """Something to tell a person; delivered by a worker through the notification channels."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_status_queued", "status", "queued_at"), Index("ix_events_user", "user_id"),
                      Index("ix_events_created", "created_at"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    source: Mapped[str] = mapped_column(String(16), default="api")
    link: Mapped[str | None] = mapped_column(String(512), nullable=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(nullable=True)


class NotificationRow(Base):
    """The in-app inbox: one entry per delivered event (the event id keeps redelivery idempotent)."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_read", "user_id", "read_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), unique=True)
    user_id: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(512), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(nullable=True)


class UserRow(Base):
    """An account. ``username`` is stored lower-case, so uniqueness is case-insensitive."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    role: Mapped[str] = mapped_column(String(16), default="viewer")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    password_hash: Mapped[str] = mapped_column(String(255))
    # Bumped when the password changes or the account is disabled: every older session stops working.
    session_version: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(nullable=True)


class TokenRow(Base):
    """An API token: only its keyed hash is stored; ``prefix`` lets people tell their tokens apart."""

    __tablename__ = "api_tokens"
    __table_args__ = (Index("ix_api_tokens_user", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)

    user: Mapped[UserRow] = relationship(lazy="joined")


class UploadRow(Base):
    """An uploaded test file (``uploads/<directory>/<name>``), its bytes and who uploaded it: only they or an
    admin may replace or delete it (no owner: a file from before accounts, an admin's). Every host reads it here."""

    __tablename__ = "uploads"

    path: Mapped[str] = mapped_column(String(512), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column()
    sha256: Mapped[str] = mapped_column(String(64))


class AuditRow(Base):
    """Append-only: who did what, to what, from where. Never a secret or a token in ``details``."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_at", "at"), Index("ix_audit_actor", "actor"), Index("ix_audit_action", "action"),
                      Index("ix_audit_target", "target"))

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    via: Mapped[str] = mapped_column(String(8))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(128), default="")
    ip: Mapped[str | None] = mapped_column(String(45), nullable=True)
    details: Mapped[dict] = mapped_column(JSON, default=dict)


class WaveRow(Base):
    """A batch of migrations run together: FIFO, at most ``max_parallel`` at a time, from ``start_at``."""

    __tablename__ = "waves"
    __table_args__ = (Index("ix_waves_state", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16), default="scheduled")
    max_parallel: Mapped[int] = mapped_column(default=1)
    start_at: Mapped[datetime | None] = mapped_column(nullable=True)
    stop_on_error: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WaveMemberRow(Base):
    """A migration's place in a wave; ``started_at`` when the wave started it, ``outcome`` how it ended there."""

    __tablename__ = "wave_migrations"
    __table_args__ = (Index("ix_wave_migrations_migration", "migration_id"),)

    wave_id: Mapped[int] = mapped_column(ForeignKey("waves.id", ondelete="CASCADE"), primary_key=True)
    migration_id: Mapped[int] = mapped_column(ForeignKey("migrations.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column()
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)


from .results import ScheduleRow, TestResultRow, TestStatRow  # noqa: E402,F401  (issue 12: each test's results)
