from __future__ import annotations

from wtforms import BooleanField, PasswordField, SelectChoice, SelectField, StringField, SubmitField

from ..domain.accounts import DISPLAY_NAME_MAX, TOKEN_NAME_MAX, USERNAME_MAX, Role
from ..forms import ServiceForm

ROLES = [SelectChoice(r.value) for r in Role]


class LoginForm(ServiceForm):
    username = StringField("Username", render_kw={"autocomplete": "username", "maxlength": USERNAME_MAX,
                                                  "autofocus": True})
    password = PasswordField("Password", render_kw={"autocomplete": "current-password"})
    save = SubmitField("Sign in")

    def payload(self) -> dict:
        return {"username": (self.username.data or "").strip(), "password": self.password.data or ""}


class PasswordForm(ServiceForm):
    current_password = PasswordField("Current password", render_kw={"autocomplete": "current-password"})
    new_password = PasswordField("New password", render_kw={"autocomplete": "new-password"})
    save = SubmitField("Change password")

    def wants_save(self) -> bool:  # two forms share the account page: only the one whose button was pressed
        return bool(self.save.data)

    def payload(self) -> dict:
        return {"current_password": self.current_password.data or "", "new_password": self.new_password.data or ""}


class TokenForm(ServiceForm):
    name = StringField("Name", render_kw={"maxlength": TOKEN_NAME_MAX, "placeholder": "ci"})
    role = SelectField("Role", choices=ROLES, validate_choice=False)
    expires_in_days = StringField("Expires after (days)", render_kw={"inputmode": "numeric", "placeholder": "never"})
    save = SubmitField("Create token")

    def wants_save(self) -> bool:
        return bool(self.save.data)

    def payload(self) -> dict:
        return {"name": self.name.data or "", "role": self.role.data or None,
                "expires_in_days": (self.expires_in_days.data or "").strip() or None}


class NewUserForm(ServiceForm):
    username = StringField("Username", render_kw={"maxlength": USERNAME_MAX, "autocomplete": "off"})
    display_name = StringField("Display name", render_kw={"maxlength": DISPLAY_NAME_MAX})
    role = SelectField("Role", choices=ROLES, default="viewer", validate_choice=False)
    password = PasswordField("Password", render_kw={"autocomplete": "new-password"})
    save = SubmitField("Create account")

    def payload(self) -> dict:
        return {"username": self.username.data or "", "display_name": self.display_name.data or "",
                "role": self.role.data, "password": self.password.data or ""}


class EditUserForm(ServiceForm):
    display_name = StringField("Display name", render_kw={"maxlength": DISPLAY_NAME_MAX})
    role = SelectField("Role", choices=ROLES, validate_choice=False)
    disabled = BooleanField("Disabled (cannot sign in; its sessions and tokens stop working)")
    password = PasswordField("New password (leave blank to keep)", render_kw={"autocomplete": "new-password"})
    save = SubmitField("Save")

    def payload(self) -> dict:
        data = {"display_name": self.display_name.data or "", "role": self.role.data, "disabled": bool(self.disabled.data)}
        if self.password.data:
            data["password"] = self.password.data
        return data
