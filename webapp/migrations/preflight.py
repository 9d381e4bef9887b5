"""Preflight: the checks of ``domain/preflight.py`` on a stored migration, with what they need read from the
database (the source workload as it is now, the other migrations of that source, the validation's files and
environment) and the vault (both stored passwords). ``report`` answers the API and the page; ``require`` is what
``services.run`` calls first."""
from __future__ import annotations

from sqlalchemy import select

from ..audit import services as audit
from ..domain import preflight as rules
from ..domain.errors import PreflightFailed, SystemVolumeRequired, VaultKeyError
from ..domain.migration import MigrationState
from ..extensions import db, vault
from ..models import EnvironmentRow, MigrationRow, WorkloadRow
from ..runs import testfiles

RUNNABLE = (MigrationState.NOT_STARTED.value, MigrationState.ERROR.value)
SYSTEM_VOLUME_MESSAGE = "The system volume C:\\ must be selected."  # the seed's words, as a refused run records


def checks(row: MigrationRow) -> list[rules.Check]:
    """Every check, in the order of ``rules.NAMES``. Decrypts both passwords: never call it from a poll."""
    source = db.session.get(WorkloadRow, row.source_id)
    name = source.ip if source else f"#{row.source_id}"
    storage = [m["name"] for m in source.storage] if source else None
    return [rules.system_volume(row.selected),
            rules.volumes(row.selected, storage, name),
            rules.credentials(_unreadable(row, source)),
            rules.exclusive_source(_others_running(row), name),
            _validation(row.validation)]


def report(row: MigrationRow) -> dict:
    """``{"ok", "checks": [{"name", "ok", "message"}]}``: the API's answer and what the detail page lists."""
    found = checks(row)
    return {"ok": all(c.ok for c in found), "checks": [c.as_json() for c in found]}


def require(row: MigrationRow, requested_by: str | None = None) -> None:
    """Refuse to run ``row`` (locked by the caller) unless every check passes. A failed check raises
    ``PreflightFailed`` and leaves the migration exactly as it was (only the audit entry is committed); only the
    seed's C:\\ rule still ends the migration ``error`` (``SystemVolumeRequired``, its error body unchanged, and
    ``requested_by`` told), as it always did, whatever else failed.
    Either refusal is audited as ``migration.run`` with ``refused``. A migration that may not run at all
    (running, success) is left to the caller's own rule (409)."""
    if row.state not in RUNNABLE:
        return
    # The source's row is locked too (PostgreSQL), so two migrations of one source cannot both pass
    # ``exclusive_source`` at the same moment; ``checks`` then reads it from the session.
    db.session.get(WorkloadRow, row.source_id, with_for_update=True)
    failed = [c.as_json() for c in rules.failed(checks(row))]
    if not failed:
        return
    target = f"migration:{row.id}"
    if any(c["name"] == "system_volume" for c in failed):
        from . import services  # services imports this module

        row.requested_by = requested_by or row.requested_by
        audit.record("migration.run", target, refused="system_volume_required")
        services.end(MigrationRow.id == row.id, MigrationState.ERROR, SYSTEM_VOLUME_MESSAGE)
        db.session.refresh(row)
        raise SystemVolumeRequired(SYSTEM_VOLUME_MESSAGE)  # its body exactly as ever (the preflight API lists all)
    audit.record("migration.run", target, refused="preflight_failed", failed=[c["name"] for c in failed])
    db.session.commit()
    raise PreflightFailed(failed)


# --- what the rules need -------------------------------------------------------------------------

def _readable(token: str | None) -> bool:
    try:
        vault.decrypt(token or "")
    except VaultKeyError:
        return False
    return True


def _unreadable(row: MigrationRow, source: WorkloadRow | None) -> list[str]:
    names = [] if _readable(row.cloud_password_enc) else ["the cloud password of this migration"]
    if source is not None and not _readable(source.password_enc):
        names.append(f"the password of the source workload {source.ip}")
    return names


def _others_running(row: MigrationRow) -> list[int]:
    return list(db.session.scalars(select(MigrationRow.id).where(
        MigrationRow.source_id == row.source_id, MigrationRow.id != row.id,
        MigrationRow.state == MigrationState.RUNNING.value).order_by(MigrationRow.id)))


def _validation(spec) -> rules.Check:
    if spec is None:
        return rules.validation(None, [], None)
    spec = spec if isinstance(spec, dict) else {}
    files = [f for f in spec.get("test_files") or [] if isinstance(f, str)]
    missing = [f for f in files if not testfiles.exists(f)]
    env_id = spec.get("environment_id")
    env = db.session.get(EnvironmentRow, env_id) if isinstance(env_id, int) and not isinstance(env_id, bool) else None
    return rules.validation(spec, missing, (env.name, env.enabled) if env else None)
