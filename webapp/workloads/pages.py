"""What the workload pages show, and what the delete page does when a workload is in use."""
from __future__ import annotations

from ..domain.errors import Conflict
from ..models import WorkloadRow
from ..pagination import Page
from . import services


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
