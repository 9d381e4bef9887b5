from __future__ import annotations

from wtforms import BooleanField, StringField, SubmitField, TextAreaField

from ..domain.environments import DESCRIPTION_MAX, NAME_MAX
from ..forms import ServiceForm


class EnvironmentForm(ServiceForm):
    name = StringField("Name", render_kw={"maxlength": NAME_MAX})
    description = TextAreaField("Description", render_kw={"rows": 3, "maxlength": DESCRIPTION_MAX})
    enabled = BooleanField("Enabled")
    save = SubmitField("Save")

    def payload(self) -> dict:
        return {"name": self.name.data or "", "description": self.description.data or "",
                "enabled": bool(self.enabled.data)}
