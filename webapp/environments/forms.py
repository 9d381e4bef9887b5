from __future__ import annotations

from wtforms import BooleanField, StringField, SubmitField, TextAreaField

from ..forms import ServiceForm


class EnvironmentForm(ServiceForm):
    name = StringField("Name", render_kw={"maxlength": 64})
    description = TextAreaField("Description", render_kw={"rows": 3, "maxlength": 2000})
    enabled = BooleanField("Enabled")
    save = SubmitField("Save")

    def payload(self) -> dict:
        return {"name": self.name.data or "", "description": self.description.data or "",
                "enabled": bool(self.enabled.data)}
