from __future__ import annotations

from wtforms import BooleanField, SelectMultipleField, StringField, SubmitField

from ..domain.waves import MAX_PARALLEL, MIN_PARALLEL, NAME_MAX
from ..forms import ServiceForm, clean_int


class WaveForm(ServiceForm):
    """A new wave; ``start_at`` is a datetime-local field read as UTC (blank: start at once)."""

    name = StringField("Name", render_kw={"maxlength": NAME_MAX, "placeholder": "Finance servers, wave 1"})
    migration_ids = SelectMultipleField("Migrations (started in this order)", validate_choice=False)
    max_parallel = StringField("At most this many at a time", default="3",
                               render_kw={"type": "number", "min": MIN_PARALLEL, "max": MAX_PARALLEL, "inputmode": "numeric"})
    start_at = StringField("Start at (UTC; blank: at once)", render_kw={"type": "datetime-local", "step": 1})
    stop_on_error = BooleanField("Stop starting new migrations after the first error")
    save = SubmitField("Create wave")

    def wants_save(self) -> bool:
        return bool(self.save.data)

    def payload(self) -> dict:
        start_at = (self.start_at.data or "").strip()
        return {"name": self.name.data or "", "migration_ids": [clean_int(v) for v in self.migration_ids.data or []],
                "max_parallel": clean_int(self.max_parallel.data), "start_at": start_at or None,
                "stop_on_error": bool(self.stop_on_error.data)}
