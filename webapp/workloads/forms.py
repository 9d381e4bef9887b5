from __future__ import annotations

from wtforms import FieldList, Form, FormField, PasswordField, StringField, SubmitField

from ..domain.errors import ValidationError
from ..forms import ServiceForm, clean_int


class VolumeForm(Form):
    name = StringField("Volume", render_kw={"placeholder": "C:\\"})
    size = StringField("Size (GiB)", render_kw={"inputmode": "numeric", "placeholder": "100"})


class WorkloadForm(ServiceForm):
    ip = StringField("IP address", render_kw={"placeholder": "10.0.0.5 or fd00::5", "autocomplete": "off"})
    username = StringField("Username", render_kw={"autocomplete": "off"})
    password = PasswordField("Password", render_kw={"autocomplete": "new-password"})
    domain = StringField("Domain")
    storage = FieldList(FormField(VolumeForm), min_entries=1)
    add_volume = SubmitField("Add another volume")
    save = SubmitField("Save workload")

    FIELD_PATHS = {"credentials.username": "username", "credentials.password": "password",
                   "credentials.domain": "domain", "credentials": "username", "storage": "-"}

    def wants_save(self) -> bool:
        return not self.add_volume.data

    def prepare(self, extra_row: bool = False) -> "WorkloadForm":
        """Show every volume and blank rows for more: at least three rows, one more on request."""
        wanted = max(3, len(self._rows()) + 1) + (1 if extra_row else 0)
        while len(self.storage.entries) < wanted:
            self.storage.append_entry()
        return self

    def _rows(self):
        return [(i, e) for i, e in enumerate(self.storage.entries) if (e.data["name"] or e.data["size"] or "").strip()]

    def payload(self) -> dict:
        return {
            "ip": (self.ip.data or "").strip(),
            "credentials": {"username": (self.username.data or "").strip(), "password": self.password.data or "",
                            "domain": (self.domain.data or "").strip()},
            "storage": [{"name": e.data["name"], "size": clean_int(e.data["size"])} for _, e in self._rows()],
        }

    def show_errors(self, exc: ValidationError) -> None:
        rows = [i for i, _ in self._rows()]
        other = {}
        for path, messages in exc.fields.items():
            parts = path.split(".")
            if parts[0] == "storage" and len(parts) >= 2 and parts[1].isdigit() and int(parts[1]) < len(rows):
                entry = self.storage.entries[rows[int(parts[1])]]
                sub = entry.form._fields.get(parts[2] if len(parts) > 2 else "name")
                sub.errors = list(sub.errors or []) + list(messages)
            else:
                other[path] = messages
        super().show_errors(ValidationError(other, exc.message) if other or not exc.fields else ValidationError({}, ""))
        self.form_errors = [m for m in self.form_errors if m]


class EditWorkloadForm(WorkloadForm):
    """The IP is shown read-only and never sent; a blank password keeps the stored one."""

    def payload(self) -> dict:
        data = super().payload()
        del data["ip"]
        return data
