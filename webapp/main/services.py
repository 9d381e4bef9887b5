"""The dashboard's figures."""
from __future__ import annotations

from sqlalchemy import func, select

from ..extensions import db
from ..models import MigrationRow, WorkloadRow


def overview() -> dict:
    session = db.session
    states = dict(session.execute(select(MigrationRow.state, func.count()).group_by(MigrationRow.state)).all())
    return {"workloads": session.scalar(select(func.count()).select_from(WorkloadRow)) or 0,
            "migrations": states, "migrations_total": sum(states.values())}
