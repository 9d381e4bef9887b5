from flask import Blueprint

bp = Blueprint("workloads", __name__, url_prefix="/workloads")

from . import views  # noqa: E402,F401
