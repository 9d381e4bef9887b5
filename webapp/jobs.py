"""Old names of the RQ job functions, kept only for jobs already queued in Redis.

The job functions live in each feature's ``jobs.py`` and are enqueued by the function itself
(``extensions.enqueue``), so new jobs name ``webapp.migrations.jobs.run_migration`` and so on. Jobs queued by the
previous release name these paths instead, and RQ imports the name a job carries when a worker takes it: after an
upgrade such a job (waiting in the queue, or held for a retry up to a failure_ttl of 7 days) must still run.
Nothing in the app uses these names.
"""
from __future__ import annotations

from .events.jobs import send_notification
from .migrations.jobs import run_migration
from .runs.jobs import run_tests

__all__ = ["run_migration", "run_tests", "send_notification"]
