"""The JSON API under /api/v1: the same services and validation as the HTML pages."""
from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api")

from . import views  # noqa: E402,F401
from . import runs  # noqa: E402,F401
from . import events  # noqa: E402,F401
from . import accounts  # noqa: E402,F401
from . import imports  # noqa: E402,F401
from . import waves  # noqa: E402,F401
from . import holds  # noqa: E402,F401
from . import schedules  # noqa: E402,F401
from . import tests  # noqa: E402,F401
from . import openapi  # noqa: E402,F401
