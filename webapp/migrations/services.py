"""Migrations: records, running them on workers (the job itself is in ``jobs.py``), cancelling."""
from __future__ import annotations

import logging
import uuid
from typing import Any

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import exists, literal_column, select

from .. import inputs
from ..audit import services as audit
from ..db import update as sql_update, utcnow
from ..domain.errors import InvalidStateError, NotFound, SystemVolumeRequired
from ..domain.events import EventSource
from ..domain.migration import Migration, MigrationState, MigrationTarget, TargetPlan, VolumeProgress
from ..domain.workloads import Credentials, MountPoint, Workload
from ..events import services as events
from ..extensions import cancel_job, db, enqueue, vault
from ..models import MigrationRow, WaveMemberRow, WorkloadRow
from ..pagination import Page, paginate
from ..workloads import services as workloads

from . import jobs, preflight, starting, validation

log = logging.getLogger(__name__)


# --- reading -------------------------------------------------------------------------------------

def get(migration_id: int, *, for_update: bool = False) -> MigrationRow:
    row = db.session.get(MigrationRow, migration_id, with_for_update=for_update or None)
    if row is None:
        raise NotFound("migration")
    return row


def list_page(page: int, per_page: int, filters: dict | None = None) -> Page:
    stmt = select(MigrationRow).where(*(getattr(MigrationRow, k) == v for k, v in (filters or {}).items()))
    return paginate(db.session, stmt, page, per_page, key=MigrationRow.id, descending=True)


def source_ips(rows: list[MigrationRow]) -> dict[int, str]:
    ids = {r.source_id for r in rows}
    if not ids:
        return {}
    return dict(db.session.execute(select(WorkloadRow.id, WorkloadRow.ip).where(WorkloadRow.id.in_(ids))).all())


def to_domain(row: MigrationRow, source: Workload | None = None, *, drop_gone: bool = False) -> Migration:
    """``drop_gone``: leave out selected volumes the source no longer has (an edit may then fix the selection)."""
    source = source or workloads.to_domain(workloads.get(row.source_id))
    creds = Credentials(row.cloud_username, vault.decrypt(row.cloud_password_enc), row.cloud_domain or "")
    selected = [n for n in row.selected if source.volume(n)] if drop_gone else row.selected
    migration = Migration(selected, source, MigrationTarget(row.cloud_type, creds))
    migration.state, migration.error = MigrationState(row.state), row.error
    migration.progress = [VolumeProgress(p["name"], p["size"], p["copied"]) for p in row.progress]
    migration.validation = row.validation
    return migration


def progress_json(row: MigrationRow) -> dict:
    total = sum(p["size"] for p in row.progress)
    copied = sum(p["copied"] for p in row.progress)
    return {
        "percent": round(100.0 * copied / total, 1) if total else 0.0,
        "mount_points": [{"name": p["name"], "size": p["size"], "copied": p["copied"]} for p in row.progress],
    }


def _iso(value):
    return value.isoformat() if value else None


def _target_vm_json(vm: dict | None) -> dict | None:
    if vm is None:
        return None
    creds = vm["credentials"]
    return {"ip": vm["ip"],
            "credentials": {"username": creds["username"], "domain": creds["domain"],
                            "password_set": bool(creds.get("password_enc"))},
            "storage": vm["storage"]}


def as_json(row: MigrationRow) -> dict:
    return {
        "id": row.id,
        "source_id": row.source_id,
        "selected_mount_points": list(row.selected),
        "target": {
            "cloud_type": row.cloud_type,
            "cloud_credentials": {"username": row.cloud_username, "domain": row.cloud_domain or "",
                                  "password_set": bool(row.cloud_password_enc)},
            "target_vm": _target_vm_json(row.target_vm),
        },
        "state": row.state,
        "phase": phase(row),
        "error": row.error,
        "progress": progress_json(row),
        "validation": validation.as_json(row),
        "requested_by": row.requested_by,
        "created_at": _iso(row.created_at),
        "started_at": _iso(row.started_at),
        "finished_at": _iso(row.finished_at),
    }


def phase(row: MigrationRow) -> str | None:
    """What a running migration is doing, or (ended ``error``) where it stopped, which tells what Retry does."""
    return row.phase if row.state in (MigrationState.RUNNING.value, MigrationState.ERROR.value) else None


def status_json(row: MigrationRow) -> dict:
    return {"state": row.state, "phase": phase(row), "finished": MigrationState(row.state).is_final,
            "progress": progress_json(row), "error": row.error}


def preview(row: MigrationRow) -> dict:
    """The target VM exactly as a successful run will leave it, and whether the C:\\ rule passes (the domain's
    ``TargetPlan``, from the volumes only: no password is decrypted for a page that polls)."""
    source = workloads.get(row.source_id)
    plan = TargetPlan.of([MountPoint(m["name"], m["size"]) for m in source.storage], row.selected)
    return {"ip": source.ip, "username": source.username, "domain": source.domain,
            "storage": workloads.storage_json(plan.kept), "dropped": workloads.storage_json(plan.dropped),
            "system_volume_ok": plan.system_volume_selected}


# --- writing -------------------------------------------------------------------------------------

def _fresh_progress(migration: Migration) -> list[dict]:
    return [{"name": m.name, "size": m.size, "copied": 0.0} for m in migration.selected]


def _apply(row: MigrationRow, migration: Migration, fresh: bool = True) -> None:  # fresh: the copy no longer counts
    row.validation = migration.validation
    row.selected = list(migration.selected_mount_points)
    row.cloud_type = migration.target.cloud_type.value
    creds = migration.target.cloud_credentials
    row.cloud_username, row.cloud_domain = creds.username, creds.domain
    row.cloud_password_enc = vault.encrypt(creds.password)
    if fresh:
        row.progress = _fresh_progress(migration)
        row.phase = row.phase and validation.COPYING


def _load_source(source_id: int) -> Workload | None:
    row = db.session.get(WorkloadRow, source_id)
    return workloads.to_domain(row) if row else None


def create(data: Any) -> MigrationRow:
    source_id, migration = inputs.migration(data, _load_source, **validation.checks())
    row = MigrationRow(source_id=source_id, state=MigrationState.NOT_STARTED.value)
    _apply(row, migration)
    db.session.add(row)
    db.session.flush()
    audit.record("migration.create", f"migration:{row.id}", source_id=source_id, cloud_type=row.cloud_type)
    db.session.commit()
    return row


def update(migration_id: int, data: Any) -> MigrationRow:
    row = editable(migration_id, for_update=True)
    existing = to_domain(row, drop_gone=True)
    _, migration = inputs.migration(data, _load_source, existing=existing, current=as_json(row), **validation.checks())
    _apply(row, migration, fresh=not validation.copy_kept(existing, migration))
    row.updated_at = utcnow()
    audit.record("migration.update", f"migration:{row.id}")
    db.session.commit()
    return row


def delete(migration_id: int) -> None:
    row = get(migration_id, for_update=True)
    if row.state == MigrationState.RUNNING.value:
        raise InvalidStateError("A running migration cannot be deleted; cancel it first.")
    db.session.delete(row)
    audit.record("migration.delete", f"migration:{migration_id}")
    db.session.commit()


def run(migration_id: int, requested_by: str | None = None) -> MigrationRow:
    """Check the rules, mark the migration running and queue a job with its id (nothing else).
    ``requested_by``: the account that pressed Run (told when it ends). Usually ``starting`` does it."""
    if (row := starting.run_unlocked(migration_id, requested_by)) is not None:
        _enqueue(row)
        return row
    row = get(migration_id, for_update=True)
    preflight.require(row, requested_by)  # a failed check refuses (422), the migration as it was; C:\ ends it error
    row.requested_by = requested_by or row.requested_by
    migration = to_domain(row)
    retry = row.state == MigrationState.ERROR.value
    try:
        migration.start()
    except SystemVolumeRequired:
        audit.record("migration.run", f"migration:{row.id}", refused="system_volume_required")
        end(MigrationRow.id == row.id, migration.state, migration.error)
        db.session.refresh(row)
        raise
    if retry and validation.can_revalidate(row):  # the copy had finished: only its validation runs again
        return validation.retry(row)
    now = utcnow()
    row.state, row.error, row.cancel_requested = MigrationState.RUNNING.value, None, False
    row.progress, row.phase = _fresh_progress(migration), validation.COPYING
    row.job_id = f"migration-{row.id}-{uuid.uuid4().hex[:12]}"
    row.queued_at, row.started_at, row.heartbeat_at, row.finished_at = now, None, None, None
    audit.record("migration.retry" if retry else "migration.run", f"migration:{row.id}")
    db.session.commit()
    _enqueue(row)
    return row


def _enqueue(row: MigrationRow) -> None:
    timeout = int(current_app.config["MIGRATION_DURATION_SECONDS"] * 2 + 120)
    try:
        enqueue(jobs.run_migration, row.id, job_id=row.job_id, job_timeout=timeout, result_ttl=3600,
                failure_ttl=7 * 86400)
    except RedisError:
        # The record stays "running" with no worker yet: the maintenance loop queues it again once Redis answers.
        log.warning("Redis unavailable; migration %s will be queued by the maintenance loop", row.id)


def cancel(migration_id: int) -> MigrationRow:
    row = get(migration_id, for_update=True)
    if row.state != MigrationState.RUNNING.value:
        raise InvalidStateError(f"Only a running migration can be cancelled; this one is {row.state}.")
    audit.record("migration.cancel", f"migration:{row.id}")
    if row.phase == validation.VALIDATING:  # its run is cancelled; the run's end ends the migration
        validation.cancel(row)
    elif row.started_at is None:  # no worker has it yet: end it here
        end(running(row.id, row.job_id) & MigrationRow.started_at.is_(None), MigrationState.ERROR, "cancelled")
        cancel_job(row.job_id)  # best effort: the job checks the record anyway
        db.session.refresh(row)
    else:
        row.cancel_requested = True
        db.session.commit()
    return row


def running(migration_id: int, token: str | None):
    """Still running under this job token: the fence for every final write."""
    return (MigrationRow.id == migration_id) & (MigrationRow.state == MigrationState.RUNNING.value) & (
        MigrationRow.job_id == token)


def end(where, state: MigrationState, error: str | None, now=None, **values) -> bool:
    """Record a final state where ``where`` still holds, and tell the requester, in one transaction."""
    ended, event_id = _end(where, state, error, now, values)
    db.session.commit()
    if event_id:
        events.queue(event_id)
    if ended is not None and ended.in_wave:  # no other migration has a wave to advance: no transaction for it
        after_end(ended.id)
    return ended is not None


def after_end(migration_id: int) -> None:
    """What follows a migration's end, once committed: its wave may start the next one (never raises)."""
    from ..waves import engine as waves  # here: waves imports this module

    waves.migration_ended(migration_id)


def end_in(where, state: MigrationState, error: str | None, now=None, **values) -> tuple[bool, str | None]:
    """``end`` inside the caller's transaction: (the id of the migration it ended or None, the event's id to
    queue). The caller commits, queues the event and calls ``after_end``."""
    ended, event_id = _end(where, state, error, now, values)
    return (ended.id if ended else None), event_id


# A wave started it (``waves.migration_ended`` also checks the wave's state), read by the final UPDATE itself; SQLite's
# RETURNING names no table, hence the alias and the spelled-out outer column.
_MEMBER = WaveMemberRow.__table__.alias("member")
_IN_A_WAVE = exists().where(_MEMBER.c.migration_id == literal_column("migrations.id"),
                            _MEMBER.c.started_at.is_not(None)).label("in_wave")


def _end(where, state: MigrationState, error: str | None, now, values: dict):
    now = now or utcnow()
    ended = db.session.execute(
        sql_update(MigrationRow).where(where)
        .values(state=state.value, error=error, finished_at=now, updated_at=now, **values)
        .returning(MigrationRow.id, MigrationRow.requested_by, MigrationRow.cloud_type, _IN_A_WAVE)
    ).first()
    event = ended and events.notify(
        ended.requested_by, f"Migration #{ended.id} to {ended.cloud_type} ended {state.value}"
        + (f": {error}" if error else "."), EventSource.MIGRATION, "migrations.detail", migration_id=ended.id)
    return ended, (event.id if event else None)


# --- the rule for editing ------------------------------------------------------------------------

def editable(migration_id: int, for_update: bool = False) -> MigrationRow:
    """The migration, if it may still be edited (only while ``not_started`` or ``error``)."""
    row = get(migration_id, for_update=for_update)
    if row.state not in (MigrationState.NOT_STARTED.value, MigrationState.ERROR.value):
        raise InvalidStateError(f"A migration that is {row.state} cannot be edited.")
    return row

