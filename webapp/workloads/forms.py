from __future__ import annotations

import zlib

from cryptography.fernet import InvalidToken
from flask import current_app
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import FieldList, Form, FormField, HiddenField, PasswordField, StringField, SubmitField

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


class ImportForm(FlaskForm):
    """Upload a CSV file (preview), then confirm: the file comes back sealed in ``content`` (encrypted, so no
    password sits in the page; checked again on confirm, nothing of the preview trusted)."""

    file = FileField("CSV file", render_kw={"accept": ".csv,text/csv"})
    content = HiddenField()
    preview = SubmitField("Preview")
    confirm = SubmitField("Import")

    SEAL = b"cutover-import:v1:"  # what only an import's sealed content starts with

    def confirming(self) -> bool:
        return bool(self.confirm.data and self.content.data)

    def uploaded(self) -> bytes | None:
        return self.file.data.read() if self.file.data and self.file.data.filename else None

    def seal(self, data: bytes) -> bool:
        """Put ``data`` in ``content``, compressed and encrypted with the credentials key (the vault's Fernet keys,
        given bytes: one base64 layer only); False when it would be too large to come back as a form field."""
        sealed = current_app.extensions["vault"].encrypt(self.SEAL + zlib.compress(data)).decode()
        if len(sealed) > (current_app.config.get("MAX_FORM_MEMORY_SIZE") or 500_000) - 1024:
            return False
        self.content.data = sealed
        return True

    def unsealed(self) -> bytes:
        try:
            packed = current_app.extensions["vault"].decrypt((self.content.data or "").encode())
            if not packed.startswith(self.SEAL):
                raise ValueError
            return zlib.decompress(packed.removeprefix(self.SEAL))  # ours: authenticated by the key
        except (InvalidToken, ValueError, zlib.error):
            raise ValidationError.single("file", "The preview could not be read back: upload the file again.") \
                from None
