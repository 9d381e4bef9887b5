"""Tests and their history: the tests list, a test's page (history strip, duration chart) and ``stats``, which
keeps ``test_stats`` up to date as runs end."""
from flask import Blueprint

bp = Blueprint("testhistory", __name__, url_prefix="/tests")

from . import views  # noqa: E402,F401
