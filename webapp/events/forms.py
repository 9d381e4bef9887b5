from __future__ import annotations

from wtforms import StringField, SubmitField, TextAreaField

from ..domain.events import DESCRIPTION_MAX, USER_ID_MAX
from ..forms import ServiceForm


class EventForm(ServiceForm):
    user_id = StringField("Send to (user id)", render_kw={"maxlength": USER_ID_MAX})
    description = TextAreaField("Message", render_kw={"rows": 4, "maxlength": DESCRIPTION_MAX})
    save = SubmitField("Record event")

    def payload(self) -> dict:
        return {"user_id": (self.user_id.data or "").strip(), "description": self.description.data or ""}
