"""The audit log: who changed what, when and from where (admins read it)."""
from flask import Blueprint

bp = Blueprint("audit", __name__, url_prefix="/admin/audit")

from . import views  # noqa: E402,F401
