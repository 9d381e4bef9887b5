from flask import Blueprint

bp = Blueprint("schedules", __name__, url_prefix="/schedules")

from . import views  # noqa: E402,F401
