from flask import Blueprint

bp = Blueprint("waves", __name__, url_prefix="/waves")

from . import views  # noqa: E402,F401
