"""What the run pages show, gathered in one place so the views stay thin."""
from __future__ import annotations

from typing import Mapping

from sqlalchemy import bindparam, func, select
from wtforms import SelectChoice

from .. import inputs
from ..domain.errors import NotFound, ValidationError
from ..domain.results import OUTCOMES
from ..domain.runs import RunState
from ..domain.testfiles import MAX_UPLOAD_BYTES
from ..domain.units import size_text
from ..environments import services as environments
from ..extensions import db
from ..models import RunLogChunk, RunRow
from ..pagination import Page
from . import compare, queueing, results, services, testfiles, trends


def listing(page: Page, filters: Mapping) -> dict:
    live = any(r.state in (RunState.QUEUED.value, RunState.RUNNING.value) for r in page.items)
    positions = {i: place for i, (place, _) in services.queue_positions(page.items).items()}
    return {"page": page, "filters": filters, "keep": page.links(filters), "live": live,
            "positions": positions, "states": [s.value for s in RunState],
            "duration": services.duration}


def environment_choices(blank: str) -> list[SelectChoice]:
    """The enabled environments, each with how busy it is, after a ``blank`` choice."""
    rows, states = environments.all_with_status()
    return [SelectChoice("", blank)] + [
        SelectChoice(str(r.id), _environment_label(r, states[r.id])) for r in rows if r.enabled]


def pool_choices(blank: str) -> list[SelectChoice]:
    """The labels of the enabled environments (each with how many carry it), after a ``blank`` choice."""
    rows = [r for r in environments.all_with_status()[0] if r.enabled]
    labels = sorted({label for r in rows for label in (r.labels or [])})
    counts = {label: sum(label in (r.labels or []) for r in rows) for label in labels}
    return [SelectChoice("", blank)] + [
        SelectChoice(label, f"{label} — {counts[label]} environment{'s' if counts[label] != 1 else ''}")
        for label in labels]


def named_groups() -> dict[str, list[dict]]:
    return _named(testfiles.grouped())


def new_run(run_form, upload_form, uploaded: dict | None = None, ask: Mapping | None = None) -> dict:
    """``ask``: the page's query (``?environment_id=`` or ``?pool=``, and ``test_files``: what a form without
    JavaScript sent to see that queue) preselects the form; ``queue``: who waits there (``queue_info``)."""
    run_form.environment_id.choices = environment_choices("— choose an environment, or a pool below —")
    run_form.pool.choices = pool_choices("— no pool —")
    target = _preselect(run_form, ask or {})
    return {"form": run_form, "upload_form": upload_form, "groups": named_groups(), "queue": queueing.info(*target),
            "directories": testfiles.directories(), "uploaded": uploaded, "upload_limit": size_text(MAX_UPLOAD_BYTES),
            "selected": set(run_form.test_files.data or []) | ({uploaded["path"]} if uploaded else set())}


def _preselect(run_form, ask: Mapping) -> tuple[int | None, str | None]:
    """What the form's queue figures are for: the environment chosen (after a refused POST too), else the one
    or the pool asked for in the query (a bad one is ignored here: the form checks what is posted)."""
    if run_form.environment_id.data or run_form.pool.data:
        return _target({"environment_id": run_form.environment_id.data} if run_form.environment_id.data
                       else {"pool": run_form.pool.data})
    target = _target(ask)
    if target != (None, None):
        run_form.environment_id.data = str(target[0]) if target[0] is not None else ""
        run_form.pool.data = target[1] or ""
        if hasattr(ask, "getlist"):  # a query string (a MultiDict): the files picked before asking
            run_form.test_files.data = run_form.test_files.data or ask.getlist("test_files")
    return target


def _target(ask: Mapping) -> tuple[int | None, str | None]:
    try:
        return inputs.queue_target(ask)
    except ValidationError:
        return None, None


def queue_info(target: tuple[int | None, str | None]) -> dict:
    """The new-run form's queue figures for an environment or a pool (``GET /runs/queue-info``)."""
    return {"queue": queueing.info(*target)}


def _named(groups: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Each directory's files, each with its file name as the picker shows it."""
    return {d: [{**f, "name": f["path"].rsplit("/", 1)[1]} for f in files] for d, files in groups.items()}


def _environment_label(row, state: dict) -> str:
    waiting = len(state["queue"])
    busy = "busy" if state["busy"] else "idle"
    return f"{row.id} · {row.name} — {busy}" + (f", {waiting} waiting" if waiting else "")


def upload(files, data: dict, actor) -> dict:
    return testfiles.upload(**inputs.upload(files, data), actor=actor)


def run(run_id: int, message: str | None = None, outcome: str | None = None) -> dict:
    """The detail page and its live status fragment. ``log``: the log so far, read only by the whole page
    (the live tail continues from there), so that a poll of the status does not read it. ``results``: the
    tests, failures first, only those of ``outcome`` when given, and the slowest 10. ``previous``: the run to
    compare with (``compare.previous_run``) and ``charts``, read only by the whole page."""
    row = services.get(run_id)
    final = RunState(row.state).is_final
    run = services.as_json(row)  # its tests are read once it ended (``as_json``): before, it has none
    return {"row": row, "run": run, "final": final, "message": message,
            "log": lambda: services.log_slice(run_id, 0), "results": results.page_view(run["tests"], outcome),
            "outcomes": OUTCOMES, "charts": lambda: trends.run_charts(row),
            "previous": lambda: compare.previous_run(row)}


def shown(run_id: int, outcome: str | None) -> dict:
    """``run`` for a GET (the page or its poll): read, then let go of the database before rendering."""
    context = run(run_id, outcome=outcome)
    db.end_read()
    return context


def log(run_id: int, offset: int) -> dict:
    """The log tail (a GET): read, then let go of the database before rendering."""
    context = {"run_id": run_id, **services.log_slice(run_id, offset)}
    db.end_read()
    return context


def _log_statement():
    """A run's state and where its log ends now, in one Core SELECT built once (the chunks' index gives the end)."""
    runs, chunks = RunRow.__table__.c, RunLogChunk.__table__.c
    end = select(func.coalesce(func.max(chunks.end), 0)).where(chunks.run_id == runs.id).scalar_subquery()
    return select(runs.state, end.label("end")).where(runs.id == bindparam("run_id"))


_LOG_END = _log_statement()


def log_version(run_id: int, offset: int) -> str:
    """The log tail fragment's version (its ETag, ``htmx.unchanged_or``): the log only grows (or retention drops it
    whole), so the offset asked for, where the log ends now and whether the run ended say all it shows."""
    found = db.session.connection().execute(_LOG_END, {"run_id": run_id}).one_or_none()
    db.end_read()
    if found is None:
        raise NotFound("run")
    return repr((run_id, offset, found.end, RunState(found.state).is_final))
