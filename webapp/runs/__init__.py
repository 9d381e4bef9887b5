from flask import Blueprint

from ..domain.queueing import wait_words

bp = Blueprint("runs", __name__, url_prefix="/runs")
bp.add_app_template_filter(wait_words, "wait_words")  # "about 3 min": a queued run's start, a queue's wait

from . import views  # noqa: E402,F401
