"""Workloads: create, read, update, delete, list. Never reads ``request``."""
from __future__ import annotations

from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError

from .. import inputs
from ..audit import services as audit
from ..db import utcnow
from ..domain.errors import Conflict, NotFound
from ..domain.workloads import Credentials, MountPoint, Workload
from ..extensions import db, vault
from ..inputs import imports
from ..models import MigrationRow, WorkloadRow
from ..pagination import Page, paginate


def to_domain(row: WorkloadRow) -> Workload:
    return Workload(
        row.ip,
        Credentials(row.username, vault.decrypt(row.password_enc), row.domain or ""),
        [MountPoint(m["name"], m["size"]) for m in row.storage],
    )


def storage_json(mounts) -> list[dict]:
    return [{"name": m.name, "size": m.size} for m in mounts]


def as_json(row: WorkloadRow) -> dict:
    return {
        "id": row.id,
        "ip": row.ip,
        "credentials": {"username": row.username, "domain": row.domain or "", "password_set": bool(row.password_enc)},
        "storage": [{"name": m["name"], "size": m["size"]} for m in row.storage],
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


def list_page(page: int, per_page: int) -> Page:
    return paginate(db.session, select(WorkloadRow), page, per_page, key=WorkloadRow.id)


def choices() -> list[tuple[int, str]]:
    """(id, ip) of every workload, for pickers."""
    return list(db.session.execute(select(WorkloadRow.id, WorkloadRow.ip).order_by(WorkloadRow.ip)).all())


def get(workload_id: int) -> WorkloadRow:
    row = db.session.get(WorkloadRow, workload_id)
    if row is None:
        raise NotFound("workload")
    return row


def _apply(row: WorkloadRow, workload: Workload) -> None:
    row.ip = workload.ip
    row.username = workload.credentials.username
    row.domain = workload.credentials.domain
    row.password_enc = vault.encrypt(workload.credentials.password)
    row.storage = storage_json(workload.storage)


def _save(row: WorkloadRow, action: str) -> WorkloadRow:
    session = db.session
    session.add(row)
    try:
        session.flush()
        audit.record(action, f"workload:{row.id}", ip=row.ip)
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict("duplicate_ip", f"A workload with IP {row.ip} already exists.",
                       {"ip": ["A workload with this IP address already exists."]}) from None
    return row


def create(data: Any) -> WorkloadRow:
    workload = inputs.workload(data)
    row = WorkloadRow()
    _apply(row, workload)
    return _save(row, "workload.create")


def update(workload_id: int, data: Any) -> WorkloadRow:
    row = get(workload_id)
    workload = inputs.workload(data, existing=to_domain(row))
    _apply(row, workload)
    row.updated_at = utcnow()
    return _save(row, "workload.update")


def stored_ips(ips: list[str]) -> dict[str, int]:
    """``{ip: id}`` of the stored workloads among ``ips`` (normalised), one query per 500 addresses."""
    found: dict[str, int] = {}
    for start in range(0, len(ips), 500):
        chunk = ips[start:start + 500]
        found.update(db.session.execute(select(WorkloadRow.ip, WorkloadRow.id).where(WorkloadRow.ip.in_(chunk))).all())
    return found


def check_import(batch: imports.Batch) -> imports.Batch:
    """Every row checked as a single create, their IPs against each other and the stored ones (for a preview)."""
    return imports.check(batch, stored_ips)


def import_batch(batch: imports.Batch) -> int:
    """Create every workload of ``batch`` (from ``inputs.imports``) in one transaction, or none: a
    ``ValidationError`` keyed ``rows.<n>.<field>`` when any row is refused. Returns how many were created."""
    check_import(batch).raise_if_any()
    rows = []
    for workload in batch.workloads:
        rows.append(WorkloadRow())
        _apply(rows[-1], workload)
    session = db.session
    session.add_all(rows)
    try:
        session.flush()
        audit.record("workload.import", "workloads", count=len(rows))
        session.commit()
    except IntegrityError:  # another request stored one of these IPs meanwhile
        session.rollback()
        raise Conflict("duplicate_ip", "A workload with one of these IPs was saved meanwhile: nothing was imported. "
                                       "Try again to see which row.") from None
    return len(rows)


def in_use(workload_id: int) -> bool:
    return bool(db.session.scalar(select(exists().where(MigrationRow.source_id == workload_id))))


def delete(workload_id: int) -> None:
    row = get(workload_id)
    if in_use(workload_id):
        raise Conflict("in_use", "This workload is the source of a migration; delete the migration first.")
    db.session.delete(row)
    audit.record("workload.delete", f"workload:{workload_id}", ip=row.ip)
    try:
        db.session.commit()
    except IntegrityError:  # a migration was created meanwhile
        db.session.rollback()
        raise Conflict("in_use", "This workload is the source of a migration; delete the migration first.") from None

