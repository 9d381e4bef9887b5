"""The migration job: what a worker runs for one migration. Takes its id; loads the record and its secrets here."""
from __future__ import annotations

import time

from flask import current_app
from sqlalchemy import bindparam, select
from sqlalchemy.orm.attributes import set_committed_value

from ..db import update as sql_update
from ..db import utcnow
from ..domain.migration import Migration, MigrationState, VolumeProgress
from ..extensions import db, vault
from ..models import MigrationRow, WorkloadRow
from ..workloads import services as workloads
from . import services, validation

PERSIST_EVERY = 0.5  # seconds between progress writes while copying (the contract: at least every 1 s)


# The record and its source in one statement (built once): the write lock is held from here to the claim's commit.
_CLAIM = (select(MigrationRow, WorkloadRow).outerjoin(WorkloadRow, WorkloadRow.id == MigrationRow.source_id)
          .where(MigrationRow.id == bindparam("migration_id")).with_for_update(of=MigrationRow)
          .execution_options(populate_existing=True))  # as the database has it, whatever this session holds

_STARTED = sql_update(MigrationRow.__table__).where(MigrationRow.id == bindparam("w_id")).values(
    started_at=bindparam("v_now"), heartbeat_at=bindparam("v_now"))  # the claim, in the lock the SELECT took


def run_migration(migration_id: int) -> str:
    """Claim the migration, copy with live progress, record the outcome."""
    session = db.session
    row, source = session.execute(_CLAIM, {"migration_id": migration_id}).first() or (None, None)
    if row is None or row.state != MigrationState.RUNNING.value or row.started_at is not None:
        session.rollback()
        return "skipped"
    now, token = utcnow(), row.job_id
    session.execute(_STARTED, {"w_id": migration_id, "v_now": now})
    session.commit()  # claimed; the passwords are decrypted after, with the write lock let go
    for name in ("started_at", "heartbeat_at"):
        set_committed_value(row, name, now)
    try:
        migration = services.to_domain(row, workloads.to_domain(source) if source is not None else None)
    except Exception as exc:  # e.g. a stored key changed: end it with the reason
        services.end(services.running(migration_id, token), MigrationState.ERROR, f"cannot start: {exc}")
        return "error"
    copier = Copier(migration_id, token)
    migration.run(current_app.config["MIGRATION_DURATION_SECONDS"],
                  on_progress=copier.on_progress, should_stop=copier.should_stop)
    copier.finish(migration)
    return migration.state.value


class Copier:
    """Persists progress of one claimed migration, fenced by its job id, and relays cancel requests."""

    def __init__(self, migration_id: int, token: str):
        self.id, self.token = migration_id, token
        self.stop = False
        self.last_write = time.monotonic()  # the claim just recorded a heartbeat

    def _where(self):
        return services.running(self.id, self.token)

    def on_progress(self, progress: list[VolumeProgress], force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_write < PERSIST_EVERY:
            return
        self.last_write = now
        session = db.session
        result = session.execute(
            sql_update(MigrationRow).where(self._where())
            .values(progress=[{"name": v.name, "size": v.size, "copied": v.copied} for v in progress],
                    heartbeat_at=utcnow())
            .returning(MigrationRow.cancel_requested)
        ).first()
        session.commit()
        self.stop = result is None or bool(result[0])  # lost the record (fenced) or asked to cancel

    def should_stop(self) -> bool:
        return self.stop

    def finish(self, migration: Migration) -> bool:
        vm = migration.target.target_vm
        values = {
            "heartbeat_at": utcnow(),
            "progress": [{"name": v.name, "size": v.size, "copied": v.copied} for v in migration.progress],
        }
        if migration.validation is not None and migration.state is MigrationState.SUCCESS:
            # copied: its test run decides, and only then is the target VM recorded (validation.run_ended)
            return validation.begin(self.id, self.token, values["progress"])
        if vm is not None and migration.state is MigrationState.SUCCESS:
            values["target_vm"] = {
                "ip": vm.ip,
                "credentials": {"username": vm.credentials.username, "domain": vm.credentials.domain,
                                "password_enc": vault.encrypt(vm.credentials.password)},
                "storage": workloads.storage_json(vm.storage),
            }
        return services.end(self._where(), migration.state, migration.error, **values)
