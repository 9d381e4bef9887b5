"""What the migration pages show, gathered in one place so the views stay thin."""
from __future__ import annotations

from functools import partial

from sqlalchemy import Text, bindparam, select, type_coerce

from ..domain.errors import NotFound
from ..domain.migration import SYSTEM_VOLUME, MigrationState
from ..extensions import db
from ..models import MigrationRow, WorkloadRow
from ..pagination import Page
from . import preflight, services


def listing(page: Page, filters: dict | None = None) -> dict:
    """The list (``filters``: its ``?state=``): polls while a migration on this page runs."""
    live = any(m.state == MigrationState.RUNNING.value for m in page.items)
    return {"page": page, "ips": services.source_ips(page.items), "keep": page.links(filters), "live": live,
            "copied": {m.id: _copied(m) for m in page.items}, "filters": filters or {},
            "states": [s.value for s in MigrationState]}


def _copied(row: MigrationRow) -> tuple[float, float]:
    """(copied, total) GiB of a migration, for its progress bar."""
    return sum(p["copied"] for p in row.progress), sum(p["size"] for p in row.progress)


def view(migration_id: int, message: str | None = None, shown: str | None = None) -> dict:
    """Everything the detail page and its live status fragment show. ``shown``: the validation run the page
    already shows (the poll's ``run`` argument); a newer one is sent with the fragment, out of band.
    ``preflight`` is called only by the Preflight section of the full page (it decrypts): never by a poll."""
    row = services.get(migration_id)
    source = db.session.get(WorkloadRow, row.source_id)
    return {"row": row, "source": source, "progress": services.progress_json(row),
            "preview": services.preview(row), "target_vm": services._target_vm_json(row.target_vm),
            "final": MigrationState(row.state).is_final, "message": message,
            "preflight": partial(preflight.report, row), **validation_run(row, shown)}


def _shown_statement():
    """What the status fragment shows (``_status.html``, its preview included) and nothing else (no password):
    Core columns of the tables, as stored (no JSON or datetime decoded), built once."""
    m, w = MigrationRow.__table__.c, WorkloadRow.__table__.c
    raw = [type_coerce(col, Text).label(col.name) for col in (
        m.state, m.phase, m.error, m.cancel_requested, m.progress, m.selected, m.cloud_type, m.target_vm,
        m.started_at, m.finished_at, w.ip, w.username, w.domain, w.storage)]
    return (select(m.validation_run_id, *raw)
            .join_from(MigrationRow.__table__, WorkloadRow.__table__, w.id == m.source_id)
            .where(m.id == bindparam("migration_id")))


_SHOWN = _shown_statement()


def status_version(migration_id: int, shown: str | None) -> str | None:
    """The status fragment's version (its ETag, ``htmx.unchanged_or``): every value it shows, read in one narrow
    SELECT, no ORM object. None, to render it anyway, while a validation run the page does not show yet must
    come with it (out of band)."""
    found = db.session.connection().execute(_SHOWN, {"migration_id": migration_id}).one_or_none()
    if found is None:
        raise NotFound("migration")
    db.end_read()
    if found.validation_run_id and shown != str(found.validation_run_id):
        return None
    return repr(tuple(found))


def status(migration_id: int, shown: str | None) -> dict:
    """``view`` for a GET (the page or its poll): read, then let go of the database before rendering."""
    context = view(migration_id, shown=shown)
    db.end_read()
    return context


def validation_run(row: MigrationRow, shown: str | None) -> dict:
    """The validation run shown inline with the run's own partials (its status and live log tail)."""
    from ..runs import pages as runs

    if not row.validation_run_id:
        return {"validation_run": None, "new_validation_run": False}
    return {"validation_run": lambda: runs.run(row.validation_run_id),
            "new_validation_run": shown != str(row.validation_run_id)}


def source_for_form(source_id) -> WorkloadRow | None:
    try:
        return db.session.get(WorkloadRow, int(source_id)) if source_id not in (None, "") else None
    except (TypeError, ValueError):
        return None


def form(form, row: MigrationRow | None = None) -> dict:
    """The new and edit forms: the source's volumes as checkboxes (the system volume preselected on a fresh choice),
    and the validation's test files (the run form's picker) and environment."""
    from ..runs import pages as runs

    chosen = form.selected_mount_points.data
    selected = chosen if (chosen or form.is_submitted() or row) else None
    source_id = row.source_id if row else form.source_id.data
    form.validation_environment_id.choices = runs.environment_choices("— no validation —")
    return {"form": form, "row": row, **volumes(source_id, selected, form.selected_mount_points),
            "groups": runs.named_groups(), "selected_files": set(form.validation_test_files.data or [])}


def volumes(source_id, selected: list[str] | None = None, field=None) -> dict:
    """The source's volumes as checkboxes; ``selected`` None (a fresh choice): the system volume is preselected."""
    chosen = {n.upper() for n in (selected if selected is not None else [SYSTEM_VOLUME])}
    return {"source": source_for_form(source_id), "chosen": chosen, "volumes_field": field}


def form_data(row: MigrationRow) -> dict:
    plan = row.validation or {}
    return {"source_id": str(row.source_id), "selected_mount_points": list(row.selected),
            "cloud_type": row.cloud_type, "cloud_username": row.cloud_username, "cloud_domain": row.cloud_domain,
            "validation_test_files": list(plan.get("test_files", [])),
            "validation_environment_id": str(plan.get("environment_id", ""))}
