"""RQ job functions: importable, ids in, everything else loaded inside the worker."""
from __future__ import annotations


def run_migration(migration_id: int) -> str:
    from .migrations import services

    return services.execute(migration_id)


def run_tests(run_id: int) -> str:
    from .runs import executor

    return executor.execute(run_id)


def send_notification(event_id: str) -> str:
    from .events import services

    return services.deliver(event_id)
