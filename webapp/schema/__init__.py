"""The database schema's history, as Alembic revisions (``versions/``); ``webapp.db.upgrade`` applies them.

Alembic is configured here, in code (no alembic.ini): ``config(connection)`` hands env.py the caller's
connection or engine. ``COMPARE_OPTIONS`` are the options env.py gives Alembic, shared with the tests
that check the models and the newest revision describe the same schema.
"""
from __future__ import annotations

import logging
from pathlib import Path

logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # else a line per plugin at every start

from alembic.config import Config  # noqa: E402
from sqlalchemy import Column, DateTime  # noqa: E402

HERE = Path(__file__).resolve().parent
BASELINE = "0001_baseline"
# The tables of the last release made with ``create_all`` (before Alembic): revision 0001 creates them.
RELEASED_TABLES = frozenset({"workloads", "migrations", "environments", "runs", "run_log_chunks", "events",
                             "notifications"})


def config(connection=None, url: str | None = None, **attributes) -> Config:
    """An Alembic config for ``alembic.command``; ``connection`` (a Connection or an Engine) is used as is."""
    cfg = Config(attributes={"connection": connection, **attributes})
    cfg.set_main_option("script_location", str(HERE))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _utc_datetime():
    from webapp.db import UTCDateTime

    return UTCDateTime


def render_item(type_, obj, autogen_context):
    """Write ``UTCDateTime`` columns as ``sa.DateTime(timezone=True)``: revisions never import app code."""
    if type_ == "type" and isinstance(obj, _utc_datetime()):
        return "sa.DateTime(timezone=True)"
    return False


def compare_type(context, inspected_column, metadata_column, inspected_type, metadata_type):
    """Compare a ``UTCDateTime`` column as the ``DateTime(timezone=True)`` it is stored as; the rest as usual."""
    if isinstance(metadata_type, _utc_datetime()):
        return context.impl.compare_type(inspected_column, Column(metadata_column.name, DateTime(timezone=True)))
    return None


COMPARE_OPTIONS = {"render_as_batch": True, "compare_type": compare_type, "render_item": render_item}
