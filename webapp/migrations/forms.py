from __future__ import annotations

from wtforms import PasswordField, SelectChoice, SelectField, SelectMultipleField, StringField, SubmitField

from ..domain.migration import CloudType
from ..forms import ServiceForm, clean_int


class MigrationForm(ServiceForm):
    source_id = SelectField("Source workload", validate_choice=False)
    selected_mount_points = SelectMultipleField("Volumes to migrate", validate_choice=False)
    cloud_type = SelectField("Cloud", choices=[SelectChoice(c.value) for c in CloudType], validate_choice=False)
    cloud_username = StringField("Cloud username", render_kw={"autocomplete": "off"})
    cloud_password = PasswordField("Cloud password", render_kw={"autocomplete": "new-password"})
    cloud_domain = StringField("Cloud domain / account")
    validation_test_files = SelectMultipleField("Validation test files", validate_choice=False)
    validation_environment_id = SelectField("Validation environment", validate_choice=False)
    save = SubmitField("Save migration")

    FIELD_PATHS = {
        "target.cloud_type": "cloud_type", "target": "cloud_type",
        "target.cloud_credentials": "cloud_username",
        "target.cloud_credentials.username": "cloud_username",
        "target.cloud_credentials.password": "cloud_password",
        "target.cloud_credentials.domain": "cloud_domain",
        "validation": "validation_test_files", "validation.test_files": "validation_test_files",
        "validation.environment_id": "validation_environment_id",
    }

    def with_sources(self, choices: list[tuple[int, str]]) -> "MigrationForm":
        self.source_id.choices = [SelectChoice("", "— choose a workload —")] + [
            SelectChoice(str(i), ip) for i, ip in choices]
        return self

    def wants_save(self) -> bool:
        return bool(self.save.data)

    def payload(self) -> dict:
        return {
            "source_id": clean_int(self.source_id.data),
            "selected_mount_points": list(self.selected_mount_points.data or []),
            "target": {"cloud_type": self.cloud_type.data,
                       "cloud_credentials": {"username": (self.cloud_username.data or "").strip(),
                                             "password": self.cloud_password.data or "",
                                             "domain": (self.cloud_domain.data or "").strip()}},
            "validation": self.validation_payload(),
        }

    def validation_payload(self) -> dict | None:
        """No files and no environment: no validation (an edit that clears both removes it)."""
        files, environment = list(self.validation_test_files.data or []), self.validation_environment_id.data
        if not files and not environment:
            return None
        return {"test_files": files, "environment_id": clean_int(environment)}


class EditMigrationForm(MigrationForm):
    """The source can never change, so it is neither shown as a choice nor sent."""

    def payload(self) -> dict:
        data = super().payload()
        del data["source_id"]
        return data
