"""Tables of each test's results (``test_results``), each test's history in one row (``test_stats``) and the
schedules that start runs (``schedules``)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, utcnow


class TestResultRow(Base):
    """One test's result in one run (issue 12): what the run page, a test's history and comparisons read."""

    __test__ = False  # not a test class, though its name starts with Test
    __tablename__ = "test_results"
    __table_args__ = (Index("ix_test_results_run", "run_id", "outcome"), Index("ix_test_results_nodeid", "nodeid", "id"),
                      Index("ix_test_results_nodeid_env", "nodeid", "environment_id", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    environment_id: Mapped[int] = mapped_column()
    nodeid: Mapped[str] = mapped_column(String(1000))
    outcome: Mapped[str] = mapped_column(String(16))  # passed failed error skipped xfailed xpassed
    duration: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    details: Mapped[str | None] = mapped_column(Text, nullable=True)
    file: Mapped[str | None] = mapped_column(String(512), nullable=True)
    line: Mapped[int | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)  # the run's end


class TestStatRow(Base):
    """A test's history in one row, kept up to date as runs end: the tests list reads only this.
    ``recent``: the last 30 outcomes, oldest first, one letter each (P F E S x X); ``durations`` likewise."""

    __test__ = False
    __tablename__ = "test_stats"
    __table_args__ = (Index("ix_test_stats_flaky", "flaky_score"), Index("ix_test_stats_failed", "failed"),
                      Index("ix_test_stats_median", "median_duration"))

    nodeid: Mapped[str] = mapped_column(String(1000), primary_key=True)
    runs: Mapped[int] = mapped_column(default=0)
    passed: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    recent: Mapped[str] = mapped_column(String(30), default="")
    durations: Mapped[list] = mapped_column(JSON, default=list)
    pass_rate: Mapped[float | None] = mapped_column(Float, nullable=True)
    flaky_score: Mapped[float] = mapped_column(Float, default=0.0)
    median_duration: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    last_run_id: Mapped[int | None] = mapped_column(nullable=True)
    last_at: Mapped[datetime | None] = mapped_column(nullable=True)


class ScheduleRow(Base):
    """A run started at every due time of a 5-field UTC cron, as ``owner`` (issue 13)."""

    __tablename__ = "schedules"
    __table_args__ = (Index("ix_schedules_due", "enabled", "next_due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    owner: Mapped[str] = mapped_column(String(64))
    cron: Mapped[str] = mapped_column(String(128))
    test_files: Mapped[list] = mapped_column(JSON)
    environment_id: Mapped[int | None] = mapped_column(nullable=True)
    pool: Mapped[str | None] = mapped_column(String(32), nullable=True)
    priority: Mapped[str] = mapped_column(String(8), default="normal")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    next_due_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_due_at: Mapped[datetime | None] = mapped_column(nullable=True)
    skipped: Mapped[int] = mapped_column(default=0)  # due times skipped while its previous run still waited
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
