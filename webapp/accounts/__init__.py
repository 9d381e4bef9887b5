"""Signing in and out, one's own account and tokens, and (admins) the accounts of everyone."""
from flask import Blueprint

bp = Blueprint("accounts", __name__)

from . import views  # noqa: E402,F401
from . import cli  # noqa: E402,F401
