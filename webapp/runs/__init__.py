from flask import Blueprint

bp = Blueprint("runs", __name__, url_prefix="/runs")

from . import views  # noqa: E402,F401
