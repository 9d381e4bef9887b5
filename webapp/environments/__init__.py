from flask import Blueprint

bp = Blueprint("environments", __name__, url_prefix="/environments")

from . import views  # noqa: E402,F401
