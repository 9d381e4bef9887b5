from __future__ import annotations

from wtforms import StringField, SubmitField, TextAreaField

from ..forms import ServiceForm


class EventForm(ServiceForm):
    user_id = StringField("Send to (user id)", render_kw={"maxlength": 128})
    description = TextAreaField("Message", render_kw={"rows": 4, "maxlength": 2000})
    save = SubmitField("Record event")

    def payload(self) -> dict:
        return {"user_id": (self.user_id.data or "").strip(), "description": self.description.data or ""}
