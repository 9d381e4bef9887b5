from __future__ import annotations

from wtforms import BooleanField, PasswordField, SelectField, StringField, SubmitField, TextAreaField

from ..domain.environments import DESCRIPTION_MAX, NAME_MAX
from ..domain.holds import MAX_MINUTES, MIN_MINUTES, REASON_MAX
from ..forms import ServiceForm, clean_int


class LabelsField(StringField):
    """The environment's labels as one text, separated by commas or spaces (the service splits it)."""

    def _value(self) -> str:
        return ", ".join(self.data) if isinstance(self.data, list) else (self.data or "")


class EnvironmentForm(ServiceForm):
    FIELD_PATHS = {"variables": "variables_text"}
    name = StringField("Name", render_kw={"maxlength": NAME_MAX})
    description = TextAreaField("Description", render_kw={"rows": 3, "maxlength": DESCRIPTION_MAX})
    labels = LabelsField("Labels", render_kw={"placeholder": "linux, gpu"})
    enabled = BooleanField("Enabled")
    variables_text = TextAreaField("Variables", render_kw={"rows": 4, "spellcheck": "false",
                                                           "placeholder": "BASE_URL=http://env-7.lab:8080"})
    setup = SelectField("Setup", validate_choice=False)
    teardown = SelectField("Teardown", validate_choice=False)
    save = SubmitField("Save")

    def __init__(self, *args, obj=None, **kwargs):
        super().__init__(*args, obj=obj, **kwargs)
        self.current = dict(obj.variables or {}) if obj is not None else {}
        if not self.is_submitted():
            self.variables_text.data = "\n".join(f"{k}={v}" for k, v in self.current.items())
            self.setup.data, self.teardown.data = (obj.setup or "", obj.teardown or "") if obj else ("", "")

    def payload(self) -> dict:
        """One ``NAME=value`` per line (a line without ``=``: an empty value); a name no longer listed is deleted."""
        lines = [line.strip() for line in (self.variables_text.data or "").splitlines() if line.strip()]
        sent = dict((line.partition("=")[0].strip(), line.partition("=")[2]) for line in lines)
        labels = self.labels.data
        return {"name": self.name.data or "", "description": self.description.data or "",
                "labels": labels if isinstance(labels, list) else (labels or ""),
                "enabled": bool(self.enabled.data), "setup": self.setup.data or None,
                "teardown": self.teardown.data or None,
                "variables": {**{name: None for name in self.current if name not in sent}, **sent}}


class SecretForm(ServiceForm):
    """Set one secret (write-only: the value is never shown again)."""
    FIELD_PATHS = {"secrets": "name"}
    name = StringField("Name", render_kw={"placeholder": "API_TOKEN", "autocomplete": "off", "spellcheck": "false"})
    value = PasswordField("Value", render_kw={"autocomplete": "new-password"})
    save_secret = SubmitField("Save secret")

    def payload(self) -> dict:
        return {"secrets": {(self.name.data or "").strip(): self.value.data or ""}}

    def show_errors(self, exc) -> None:
        """``secrets.NAME`` errors are about the name or the value: each beside its own field."""
        for path, messages in exc.fields.items():
            for message in messages:
                field = self.value if message.startswith("A value") else self.name
                field.errors = list(field.errors or []) + [message]
        self.refused = True
        if not exc.fields:
            self.form_errors.append(exc.message)


class SecretDeleteForm(ServiceForm):
    name = StringField()  # rendered as a hidden input per secret by the page
    delete_secret = SubmitField("Delete")

    def payload(self) -> dict:
        return {"secrets": {self.name.data or "": None}}


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
