from __future__ import annotations

import base64
import binascii
import zlib

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import FieldList, Form, FormField, HiddenField, PasswordField, StringField, SubmitField

from ..domain.errors import ValidationError, VaultKeyError
from ..extensions import vault
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


class ImportForm(FlaskForm):
    """Upload a CSV file (preview), then confirm: the file comes back sealed in ``content`` (encrypted, so no
    password sits in the page; checked again on confirm, nothing of the preview trusted)."""

    file = FileField("CSV file", render_kw={"accept": ".csv,text/csv"})
    content = HiddenField()
    preview = SubmitField("Preview")
    confirm = SubmitField("Import")

    SEAL = "cutover-import:v1:"  # what only an import's sealed content starts with

    def confirming(self) -> bool:
        return bool(self.confirm.data and self.content.data)

    def uploaded(self) -> bytes | None:
        return self.file.data.read() if self.file.data and self.file.data.filename else None

    def seal(self, data: bytes) -> None:
        self.content.data = vault.encrypt(self.SEAL + base64.b64encode(zlib.compress(data)).decode())

    def unsealed(self) -> bytes:
        try:
            text = vault.decrypt(self.content.data or "")
            if not text.startswith(self.SEAL):
                raise ValueError
            return zlib.decompress(base64.b64decode(text.removeprefix(self.SEAL)))  # ours: authenticated
        except (VaultKeyError, ValueError, zlib.error, binascii.Error):
            raise ValidationError.single("file", "The preview could not be read back: upload the file again.") \
                from None
