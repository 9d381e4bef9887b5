from __future__ import annotations

from wtforms import BooleanField, SelectField, StringField, SubmitField, TextAreaField
from wtforms import SelectChoice

from ..domain.schedules import CRON_MAX, NAME_MAX, PRIORITIES
from ..forms import ServiceForm, clean_int


class ScheduleForm(ServiceForm):
    """A new schedule, or the changes to one (the same fields). ``test_files``: one path a line."""

    name = StringField("Name", render_kw={"maxlength": NAME_MAX, "placeholder": "Nightly smoke tests"})
    cron = StringField("When (cron, 5 fields, UTC)", render_kw={"maxlength": CRON_MAX, "placeholder": "0 2 * * *"})
    environment_id = SelectField("Environment", validate_choice=False)
    pool = SelectField("Or a pool", validate_choice=False)
    test_files = TextAreaField("Test files (one path a line)", render_kw={"rows": 4,
                                                                          "placeholder": "samples/smoke/test_ping.py"})
    priority = SelectField("Priority", choices=[SelectChoice(p, p) for p in PRIORITIES], validate_choice=False)
    enabled = BooleanField("Enabled", default=True)
    save = SubmitField("Save schedule")

    def wants_save(self) -> bool:
        return bool(self.save.data)

    def payload(self) -> dict:
        files = [line.strip() for line in (self.test_files.data or "").splitlines() if line.strip()]
        return {"name": self.name.data or "", "cron": self.cron.data or "",
                "environment_id": clean_int(self.environment_id.data), "pool": self.pool.data or None,
                "test_files": files,
                "priority": self.priority.data or "normal", "enabled": bool(self.enabled.data)}


class DeleteForm(ServiceForm):
    """Only its CSRF token: deleting is a POST from a real form."""

    delete = SubmitField("Delete schedule")
