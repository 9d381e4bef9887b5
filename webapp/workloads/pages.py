"""What the workload pages show, and what the delete page does when a workload is in use."""
from __future__ import annotations

from dataclasses import dataclass

from ..domain.errors import Conflict, DomainError, ValidationError
from ..domain.imports import CSV_COLUMNS, PREVIEW_ROWS
from ..errors import refusal
from ..forms import SHOWN
from ..inputs import imports
from ..models import WorkloadRow
from ..pagination import Page
from . import services

LATER_ERRORS = 100  # errors of rows after the preview, listed below it


def listing(page: Page) -> dict:
    return {"page": page, "keep": page.links()}


def form(form, row: WorkloadRow | None = None) -> dict:
    """The new and edit forms (``add_volume`` pressed: one more empty volume row)."""
    return {"form": form.prepare(form.add_volume.data), "row": row}


def form_data(row: WorkloadRow) -> dict:
    """What the edit form starts with: everything but the password."""
    return {"ip": row.ip, "username": row.username, "domain": row.domain,
            "storage": [{"name": m["name"], "size": str(m["size"])} for m in row.storage]}


def delete_or_explain(workload_id: int) -> bool:
    """Delete for the HTML page: False (and the page explains) when the workload is in use."""
    try:
        services.delete(workload_id)
    except Conflict:
        return False
    return True


def delete(row: WorkloadRow) -> dict:
    return {"row": row, "in_use": services.in_use(row.id)}


# --- the import page ---------------------------------------------------------------------------------

@dataclass
class ImportStep:
    """What the import page answers: a page (``context``, ``status``), or ``created`` workloads (redirect)."""

    context: dict
    status: int = 200
    created: int | None = None


def import_step(form) -> ImportStep:
    """GET: the upload form. A file posted: its preview (every row checked, nothing stored). Confirmed: the
    sealed file read back and imported, checked again from scratch; refused, the preview shows why."""
    if not form.is_submitted():
        return ImportStep({"form": form, "columns": CSV_COLUMNS})
    batch = data = None
    try:
        data = form.unsealed() if form.confirming() else form.uploaded()
        if data is None:
            raise ValidationError.single("file", "Choose a CSV file to preview.")
        batch = imports.csv_rows(data)
        if form.confirming():
            return ImportStep({}, created=services.import_batch(batch))
        services.check_import(batch)
    except DomainError as exc:
        answer = refusal(exc)
        if answer.status not in SHOWN:
            raise
        if batch is None or not batch.errors.fields:  # the file as a whole (or a race on confirm)
            form.file.errors = [m for key in ("file", "header") for m in answer.fields.get(key, [])]
            form.form_errors = [] if form.file.errors else [answer.message]
            return ImportStep({"form": form, "columns": CSV_COLUMNS}, answer.status)
    if not batch.errors.fields and not form.seal(data):
        form.file.errors = [f"Too large to confirm on this page ({batch.count} rows): split the file, or send it "
                            "to POST /api/v1/workloads/import."]
        return ImportStep(_preview(form, batch, ready=False), 413)
    return ImportStep(_preview(form, batch), 422 if batch.errors.fields else 200)


def _preview(form, batch, ready: bool = True) -> dict:
    errors = batch.by_row()
    rows = [{"number": n, "cells": batch.cells[n], "errors": errors.get(n, {})}
            for n in range(min(batch.count, PREVIEW_ROWS))]
    later = [(n, name, message) for n, fields in sorted(errors.items()) if n >= PREVIEW_ROWS
             for name, messages in fields.items() for message in messages]
    return {"form": form, "columns": CSV_COLUMNS, "rows": rows, "count": batch.count, "bad_rows": len(errors),
            "later": later[:LATER_ERRORS], "more_later": max(0, len(later) - LATER_ERRORS),
            "ready": ready and not batch.errors.fields}
