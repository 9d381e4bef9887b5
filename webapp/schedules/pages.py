"""What the schedule pages show, gathered in one place so the views stay thin."""
from __future__ import annotations

from flask import url_for

from .. import charts
from ..auth import principal
from ..models import RunRow, ScheduleRow
from ..pagination import Page
from ..runs.pages import environment_choices, pool_choices
from . import services
from .forms import DeleteForm, ScheduleForm


def new_form(formdata=None, row: ScheduleRow | None = None) -> ScheduleForm:
    form = ScheduleForm(formdata=formdata, obj=None)
    if row is not None and formdata is None:
        form.name.data, form.cron.data, form.priority.data = row.name, row.cron, row.priority
        form.environment_id.data, form.enabled.data = str(row.environment_id or ""), row.enabled
        form.pool.data = row.pool or ""
        form.test_files.data = "\n".join(row.test_files or [])
    form.environment_id.choices = environment_choices("— choose an environment, or a pool below —")
    form.pool.choices = pool_choices("— no pool —")
    return form


def strip(recent: list[RunRow]) -> dict:
    """The last runs' outcomes, oldest first: one coloured cell per run, linking to it."""
    return charts.strip({"label": f"#{r.id}", "state": r.state, "href": url_for("runs.detail", run_id=r.id)}
                        for r in reversed(recent))


def listing(page: Page, form: ScheduleForm | None = None) -> dict:
    recent = services.recent_runs([s.id for s in page.items])
    return {"page": page, "keep": page.links(), "strips": {i: strip(r) for i, r in recent.items()},
            "form": form or new_form()}


def view(schedule_id: int, form: ScheduleForm | None = None) -> dict:
    row = services.get(schedule_id)
    recent = services.recent_runs([row.id])[row.id]
    who = principal()
    may_edit = bool(who and who.can("operator") and (who.username == row.owner or who.can("admin")))
    return {"row": row, "strip": strip(recent), "recent": recent, "form": form or new_form(row=row),
            "delete_form": DeleteForm(), "may_edit": may_edit}
