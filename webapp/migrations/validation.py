"""Validation runs: a migration whose copy finished is tested by a run of its own test files on its environment
(``phase`` "validating"); the run's end (``runs.dispatch.finish``, the one place every run ends) ends the migration.

The phase change and the run's insert share one transaction, and so do the run's end and the migration's, so a
crash never leaves one without the other. The pytest process is given the target as ``CUTOVER_*`` variables.
"""
from __future__ import annotations

import json
import logging
import uuid

from flask import has_request_context, url_for
from sqlalchemy import or_, select

from ..audit import services as audit
from ..db import update as sql_update
from ..db import utcnow
from ..domain.errors import InvalidStateError, NotFound, ValidationError
from ..domain.migration import Migration, MigrationState
from ..domain.runs import RunState
from ..extensions import db, vault
from ..models import EnvironmentRow, MigrationRow, RunRow, WorkloadRow

log = logging.getLogger(__name__)
COPYING, VALIDATING = "copying", "validating"
RUNNING = MigrationState.RUNNING.value


# --- input -----------------------------------------------------------------------------------------

def environment_enabled(environment_id: int) -> bool:
    environment = db.session.get(EnvironmentRow, environment_id)
    return environment is not None and environment.enabled


def checks() -> dict:
    """What ``inputs.migration`` asks about a validation's files and environment (a test run's rules)."""
    from ..runs import testfiles

    return {"file_exists": testfiles.exists, "environment_enabled": environment_enabled}


def copy_kept(before: Migration, after: Migration) -> bool:
    """An edit that keeps what was copied (only the validation changed): a retry need not copy again."""
    def what(m: Migration):
        creds = m.target.cloud_credentials
        return m.selected_mount_points, m.target.cloud_type, creds.username, creds.password, creds.domain
    return what(before) == what(after)


# --- reading ---------------------------------------------------------------------------------------

def as_json(row: MigrationRow) -> dict | None:
    """``{"test_files", "environment_id", "run_id", "state"}`` (of the latest validation run), or None."""
    if row.validation is None:
        return None
    state = db.session.scalar(select(RunRow.state).where(RunRow.id == row.validation_run_id)) \
        if row.validation_run_id else None
    return {"test_files": list(row.validation["test_files"]), "environment_id": row.validation["environment_id"],
            "run_id": row.validation_run_id, "state": state}


def link(migration_id: int | None) -> str | None:
    """The page of the migration a run validates (None for a plain run)."""
    if migration_id is None:
        return None
    if has_request_context():
        return url_for("migrations.detail", migration_id=migration_id)
    from ..events.services import page_url

    return page_url("migrations.detail", migration_id=migration_id)


def target_variables(session, run_id: int) -> dict[str, str]:
    """The target of the migration a run validates, for its pytest process: never a credential."""
    run = session.get(RunRow, run_id)
    row = run and run.migration_id and session.get(MigrationRow, run.migration_id)
    if not row:
        return {}
    ip = session.scalar(select(WorkloadRow.ip).where(WorkloadRow.id == row.source_id)) or ""
    return {"CUTOVER_MIGRATION_ID": str(row.id), "CUTOVER_TARGET_IP": ip, "CUTOVER_TARGET_CLOUD": row.cloud_type,
            "CUTOVER_TARGET_VOLUMES": json.dumps([{"name": p["name"], "size": p["size"]} for p in row.progress])}


def not_validating():
    """Migrations a copy worker heartbeats (a validating one waits for its run instead)."""
    return or_(MigrationRow.phase.is_(None), MigrationRow.phase != VALIDATING)


# --- starting --------------------------------------------------------------------------------------

def _add_run(migration_id: int, username: str | None, plan: dict) -> RunRow | None:
    """The validation run, queued like any run (None when its environment was disabled since)."""
    environment = db.session.get(EnvironmentRow, plan["environment_id"], with_for_update=True)  # FIFO order (PG)
    if environment is None or not environment.enabled:
        return None
    run = RunRow(state=RunState.QUEUED.value, username=(username or "system")[:64],
                 environment_id=plan["environment_id"], test_files=list(plan["test_files"]), migration_id=migration_id)
    db.session.add(run)
    db.session.flush()
    audit.record("run.create", f"run:{run.id}", environment_id=run.environment_id, test_files=run.test_files,
                 migration_id=migration_id)
    return run


def _disabled(where, plan: dict, **values) -> bool:
    from . import services

    return services.end(where, MigrationState.ERROR, f"validation failed: environment {plan['environment_id']} "
                        "is disabled", phase=VALIDATING, **values)


def begin(migration_id: int, token: str, progress: list[dict]) -> bool:
    """The copy of a migration with a validation finished: ``phase`` validating and its run queued, together
    (fenced by the copy's token). False when fenced out."""
    from ..runs import dispatch
    from . import services

    session, now = db.session, utcnow()
    where = services.running(migration_id, token)
    row = session.execute(sql_update(MigrationRow).where(where)
                          .values(phase=VALIDATING, progress=progress, heartbeat_at=now, updated_at=now)
                          .returning(MigrationRow.requested_by, MigrationRow.validation)).first()
    if row is None:
        session.rollback()
        return False
    run = _add_run(migration_id, row.requested_by, row.validation)
    if run is None:
        session.rollback()
        return _disabled(where, row.validation, progress=progress)
    session.execute(sql_update(MigrationRow).where(MigrationRow.id == migration_id).values(validation_run_id=run.id))
    audit.record("migration.validate", f"migration:{migration_id}", run_id=run.id)
    session.commit()
    dispatch.safe_dispatch(run.environment_id)
    return True


def can_revalidate(row: MigrationRow) -> bool:
    """An errored migration whose copy had finished: a retry only runs its validation again."""
    return (row.state == MigrationState.ERROR.value and row.phase == VALIDATING and row.validation is not None
            and bool(row.progress) and all(p["copied"] >= p["size"] for p in row.progress))


def retry(row: MigrationRow) -> MigrationRow:
    """Run only the validation again (the row is locked by the caller); commits. Refused while its
    environment is disabled (the migration stays as it was)."""
    from ..runs import dispatch

    run = _add_run(row.id, row.requested_by, row.validation)
    if run is None:
        db.session.rollback()
        environment_id = row.validation["environment_id"]
        raise ValidationError.single("validation.environment_id",
                                     f"Environment {environment_id} is disabled: choose another one.")
    row.state, row.error, row.cancel_requested, row.finished_at = RUNNING, None, False, None
    row.job_id = f"migration-{row.id}-{uuid.uuid4().hex[:12]}"
    row.validation_run_id, row.heartbeat_at, row.updated_at = run.id, utcnow(), utcnow()
    audit.record("migration.retry", f"migration:{row.id}", only="validation", run_id=run.id)
    db.session.commit()
    dispatch.safe_dispatch(run.environment_id)
    return row


# --- ending ----------------------------------------------------------------------------------------

def _validating(migration_id: int, run_id: int):
    return (MigrationRow.id == migration_id) & (MigrationRow.state == RUNNING) & (
        MigrationRow.phase == VALIDATING) & (MigrationRow.validation_run_id == run_id)


def outcome(run_id: int, state: str, error: str | None, summary: dict | None) -> str | None:
    """None when the run passed, else the migration's error: ``validation failed: run #N (<k> failed)`` or the
    run's own reason (``cancelled``, ``worker lost``, ``sandbox unavailable: …``)."""
    if state == RunState.SUCCESS.value:
        return None
    summary = summary or {}
    reason = error if error else f"{summary.get('failed', 0) + summary.get('errors', 0)} failed"
    return f"validation failed: run #{run_id} ({reason})"


def _target_vm(row: MigrationRow) -> dict:
    from ..workloads import services as workloads
    from . import services

    vm = services.to_domain(row).preview()
    return {"ip": vm.ip, "credentials": {"username": vm.credentials.username, "domain": vm.credentials.domain,
                                         "password_enc": vault.encrypt(vm.credentials.password)},
            "storage": workloads.storage_json(vm.storage)}


def run_ended(run_id: int, migration_id: int, state: str, error: str | None, summary: dict | None,
              now=None) -> tuple[int | None, str | None]:
    """Called by ``dispatch.finish`` in its transaction (no commit here): end the migration this run validates,
    if it still waits for this run. Returns (the migration's id if it ended, the id of the event to queue after
    the commit); the caller then calls ``services.after_end``."""
    from . import services

    where = _validating(migration_id, run_id)
    failure = outcome(run_id, state, error, summary)
    values = {}
    if failure is None:
        row = db.session.get(MigrationRow, migration_id)
        if row is None or row.validation_run_id != run_id:
            return None, None
        try:
            values["target_vm"] = _target_vm(row)
        except Exception as exc:  # e.g. a stored key changed: the migration ends with the reason
            log.warning("migration %s: cannot record its target: %s", migration_id, exc)
            failure = f"validation passed but the target could not be recorded: {exc}"
    return services.end_in(where, MigrationState.ERROR if failure else MigrationState.SUCCESS, failure, now,
                           **values)


def cancel(row: MigrationRow) -> None:
    """Cancel a validating migration: its run is cancelled, and the run's end ends the migration (``row`` is
    refreshed)."""
    from ..runs import services as runs

    db.session.execute(sql_update(MigrationRow).where(MigrationRow.id == row.id).values(cancel_requested=True))
    db.session.commit()  # the migration's lock is let go first: the run's end locks the run, then the migration
    try:
        runs.cancel(row.validation_run_id)
    except (InvalidStateError, NotFound):  # its run ended (or is gone): end the migration by it
        db.session.rollback()
        repair()
    db.session.refresh(row)


def repair(now=None) -> int:
    """Maintenance: a validating migration whose run is final (or gone) ends as its run did."""
    from ..events import services as events
    from . import services

    final = [s.value for s in RunState if s.is_final]
    stuck = db.session.execute(
        select(MigrationRow.id, MigrationRow.validation_run_id, RunRow.id.label("run_id"), RunRow.state, RunRow.error,
               RunRow.summary)
        .outerjoin(RunRow, RunRow.id == MigrationRow.validation_run_id)
        .where(MigrationRow.state == RUNNING, MigrationRow.phase == VALIDATING,
               or_(RunRow.id.is_(None), RunRow.state.in_(final)))).all()
    db.session.rollback()
    repaired = 0
    for m in stuck:
        if m.run_id is None:  # its run is gone
            where = (MigrationRow.id == m.id) & (MigrationRow.state == RUNNING) & (MigrationRow.phase == VALIDATING)
            repaired += services.end(where, MigrationState.ERROR, f"validation failed: run #{m.validation_run_id} "
                                     "(lost)", now)
            continue
        ended, event_id = run_ended(m.run_id, m.id, m.state, m.error, m.summary, now)
        db.session.commit()
        if event_id:
            events.queue(event_id)
        if ended is not None:
            repaired += 1
            services.after_end(ended)
    return repaired
