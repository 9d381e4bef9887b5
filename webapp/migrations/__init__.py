from flask import Blueprint

bp = Blueprint("migrations", __name__, url_prefix="/migrations")

from . import views  # noqa: E402,F401
