from __future__ import annotations

from wtforms import BooleanField, StringField, SubmitField, TextAreaField

from ..domain.environments import DESCRIPTION_MAX, NAME_MAX
from ..domain.holds import MAX_MINUTES, MIN_MINUTES, REASON_MAX
from ..forms import ServiceForm, clean_int


class LabelsField(StringField):
    """The environment's labels as one text, separated by commas or spaces (the service splits it)."""

    def _value(self) -> str:
        return ", ".join(self.data) if isinstance(self.data, list) else (self.data or "")


class EnvironmentForm(ServiceForm):
    name = StringField("Name", render_kw={"maxlength": NAME_MAX})
    description = TextAreaField("Description", render_kw={"rows": 3, "maxlength": DESCRIPTION_MAX})
    labels = LabelsField("Labels", render_kw={"placeholder": "linux, gpu"})
    enabled = BooleanField("Enabled")
    save = SubmitField("Save")

    def payload(self) -> dict:
        labels = self.labels.data
        return {"name": self.name.data or "", "description": self.description.data or "",
                "labels": labels if isinstance(labels, list) else (labels or ""), "enabled": bool(self.enabled.data)}


class HoldForm(ServiceForm):
    """Hold the environment (or replace its hold): no new run starts there until released or ended."""
    minutes = StringField("Minutes", render_kw={"inputmode": "numeric", "placeholder": f"{MIN_MINUTES}–{MAX_MINUTES}"})
    reason = StringField("Reason", render_kw={"maxlength": REASON_MAX})
    hold = SubmitField("Hold")

    def payload(self) -> dict:
        return {"minutes": clean_int(self.minutes.data), "reason": self.reason.data or ""}


class ReleaseForm(ServiceForm):
    release = SubmitField("Release")

    def payload(self) -> dict:
        return {}
