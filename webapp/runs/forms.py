from __future__ import annotations

from flask_wtf.file import FileField
from wtforms import BooleanField, SelectChoice, SelectField, SelectMultipleField, StringField, SubmitField

from ..domain.pools import PRIORITIES
from ..forms import ServiceForm, clean_int


class RunForm(ServiceForm):
    """Where the run goes: an environment, or a pool (any free environment with that label)."""
    environment_id = SelectField("Environment", validate_choice=False)
    pool = SelectField("Or a pool", validate_choice=False)
    priority = SelectField("Priority", choices=[SelectChoice(p, p) for p in PRIORITIES], validate_choice=False)
    test_files = SelectMultipleField("Test files", validate_choice=False)
    save = SubmitField("Start run")

    def payload(self) -> dict:
        return {"environment_id": clean_int(self.environment_id.data), "pool": self.pool.data or None,
                "priority": self.priority.data or None, "test_files": list(self.test_files.data or [])}


class UploadForm(ServiceForm):
    file = FileField("Test file")
    directory = StringField("Directory", render_kw={"list": "upload-directories", "placeholder": "smoke"})
    overwrite = BooleanField("Replace a file with the same name")
    upload = SubmitField("Upload")

    def payload(self) -> dict:
        return {"directory": self.directory.data or "", "overwrite": "true" if self.overwrite.data else ""}
