"""Accounts, roles and API tokens: the rules, in plain Python (no Flask, no SQL)."""
from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from .errors import ValidationError

USERNAME_MAX = 64
USERNAME = re.compile(rf"[a-z0-9_.-]{{1,{USERNAME_MAX}}}")
USERNAME_PATTERN = rf"^[A-Za-z0-9_.-]{{1,{USERNAME_MAX}}}$"  # what the API accepts (compared without case)
PASSWORD_MIN, PASSWORD_MAX = 8, 256
DISPLAY_NAME_MAX = 128
TOKEN_NAME_MAX = 64
TOKEN_PREFIX = "cut_"
MAX_TOKEN_DAYS = 3650


class Role(str, enum.Enum):
    """``viewer`` < ``operator`` < ``admin``: each role may do everything the one before it may."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: "Role") -> bool:
        return self.rank >= needed.rank

    @classmethod
    def lowest(cls, *roles: "Role") -> "Role":
        return min(roles, key=lambda r: r.rank)


ANONYMOUS = "anonymous"  # the access level of routes anyone may use (sign-in page, ping, static files)


@dataclass(frozen=True)
class Principal:
    """Who is acting on this request: the account, the role it acts with now, and how it came in."""

    username: str
    role: Role
    via: str  # web | api | cli | worker
    user_id: int | None = None
    token_id: int | None = None

    def can(self, needed: Role | str) -> bool:
        return self.role.allows(Role(needed))

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


def check_username(value: Any, path: str = "username") -> str:
    """``[a-z0-9_.-]{1,USERNAME_MAX}``, compared without regard to case: stored lower-case."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError.single(path, "Username is required.")
    name = value.strip().lower()
    if not USERNAME.fullmatch(name):
        raise ValidationError.single(path, f"Username must be 1 to {USERNAME_MAX} characters: letters, digits, "
                                           "'_', '.' or '-'.")
    return name


def check_password(value: Any, path: str = "password") -> str:
    if not isinstance(value, str) or not value:
        raise ValidationError.single(path, "Password is required.")
    if len(value) < PASSWORD_MIN:
        raise ValidationError.single(path, f"Password must be at least {PASSWORD_MIN} characters.")
    if len(value) > PASSWORD_MAX:
        raise ValidationError.single(path, f"Password must be at most {PASSWORD_MAX} characters.")
    if "\x00" in value:
        raise ValidationError.single(path, "Password must not contain NUL characters.")
    return value


def check_role(value: Any, path: str = "role") -> Role:
    try:
        return Role(value)
    except ValueError:
        raise ValidationError.single(path, "Role must be one of: " + ", ".join(r.value for r in Role) + ".") from None


def check_display_name(value: Any, path: str = "display_name") -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError.single(path, "Display name must be text.")
    value = value.strip()
    if len(value) > DISPLAY_NAME_MAX or not value.isprintable():
        raise ValidationError.single(path, f"Display name must be at most {DISPLAY_NAME_MAX} printable characters.")
    return value


def check_token_name(value: Any, path: str = "name") -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError.single(path, "Name is required: say what the token is for (e.g. 'ci').")
    value = value.strip()
    if len(value) > TOKEN_NAME_MAX or not value.isprintable():
        raise ValidationError.single(path, f"Name must be at most {TOKEN_NAME_MAX} printable characters.")
    return value


def check_expiry_days(value: Any, path: str = "expires_in_days") -> int | None:
    """``None`` means the token never expires."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and len(value.strip()) < 10:
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TOKEN_DAYS:
        raise ValidationError.single(path, f"Expiry must be a whole number of days from 1 to {MAX_TOKEN_DAYS}.")
    return value


def check_token_role(value: Any, own: Role, path: str = "role") -> Role:
    """A token acts with the owner's role or a lower one, never a higher one."""
    if value is None:
        return own
    role = check_role(value, path)
    if not own.allows(role):
        raise ValidationError.single(path, f"A token's role cannot be higher than your own ({own.value}).")
    return role


def new_token() -> str:
    """A random token with a recognisable prefix (``cut_`` + 43 URL-safe characters, 256 bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str, key: bytes) -> str:
    """Random tokens need no slow hash: a keyed HMAC-SHA256 is enough, and costs microseconds."""
    return hmac.new(key, token.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def looks_like_token(value: str) -> bool:
    return value.startswith(TOKEN_PREFIX) and 20 <= len(value) <= 128
