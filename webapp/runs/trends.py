"""The run page's charts: how the runs of the same files went lately, on any environment (the same
``test_files`` list, in the same order). Read-only; only the whole page asks (a status poll never does)."""
from __future__ import annotations

import json

from flask import url_for
from sqlalchemy import Text, cast, select

from .. import charts
from ..extensions import db
from ..models import RunRow

LAST = 30  # runs in the charts
WINDOW = 20_000  # ids either side of the run that the search looks through: bounded on 100k+ runs


def same_files(row: RunRow, limit: int = LAST) -> list:
    """The last ``limit`` runs of ``row``'s files, oldest first, ending at the newest such run; or, when
    ``row`` is older than those, ending at ``row`` (so that the run itself is always shown)."""
    columns = (RunRow.id, RunRow.state, RunRow.environment_id, RunRow.test_files, RunRow.started_at,
               RunRow.finished_at)
    files = json.dumps(row.test_files)
    base = select(*columns).where(RunRow.id.between(row.id - WINDOW, row.id + WINDOW),
                                  cast(RunRow.test_files, Text) == files).order_by(RunRow.id.desc()).limit(limit)
    found = [r for r in db.session.execute(base).all() if r.test_files == row.test_files]
    if all(r.id != row.id for r in found):
        found = [r for r in db.session.execute(base.where(RunRow.id <= row.id)).all()
                 if r.test_files == row.test_files]
        if all(r.id != row.id for r in found):  # stored text other than json.dumps writes: the run alone
            found = [r for r in db.session.execute(select(*columns).where(RunRow.id == row.id)).all()]
    return found[::-1]


def seconds(run) -> float | None:
    """A finished run's duration in seconds (one decimal), else None."""
    if run.started_at is None or run.finished_at is None:
        return None
    return round((run.finished_at - run.started_at).total_seconds(), 1)


def run_charts(row: RunRow) -> dict:
    """The duration sparkline and the outcome strip of the runs of ``row``'s files."""
    runs = same_files(row)
    timed = [r for r in runs if seconds(r) is not None]
    duration = charts.sparkline([seconds(r) for r in timed], [f"#{r.id}" for r in timed])
    strip = charts.strip({"label": f"#{r.id}", "state": r.state, "current": r.id == row.id,
                          "href": url_for("runs.detail", run_id=r.id)} for r in runs)
    environments = sorted({r.environment_id for r in runs if r.environment_id is not None})
    return {"duration": duration, "strip": strip, "count": len(runs), "environments": environments,
            "summary": _summary(runs, timed)}


def _summary(runs: list, timed: list) -> str:
    states: dict[str, int] = {}
    for r in runs:
        states[r.state] = states.get(r.state, 0) + 1
    counted = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
    text = f"The last {len(runs)} runs of these files: {counted}."
    if timed:
        values = [seconds(r) for r in timed]
        text += f" Durations from {min(values)} s to {max(values)} s; the newest {values[-1]} s."
    return text
