"""What the environment pages show: the live grid and one environment's activity."""
from __future__ import annotations

import hashlib

from .. import htmx
from ..models import EnvironmentRow
from . import holds, services, usage
from ..runs import testfiles
from .forms import EnvironmentForm, HoldForm, ReleaseForm, SecretDeleteForm, SecretForm

GRID_FAST, GRID_IDLE, GRID_AFTER = "2s", "10s", 15  # busy: every 2 s; all idle: 10 s; slower once unchanged


def grid(last: tuple[str, int] = ("", 0)) -> dict:
    """The 10×10 grid. It has no final state (runs may start elsewhere): it polls every 2 s while an
    environment is busy, every 10 s while all are idle, and slower still once nothing changed for a while
    (``last``: what the polling grid showed, see ``htmx.poll``)."""
    rows, states = services.all_with_status()
    fast = GRID_FAST if any(s["busy"] for s in states.values()) else GRID_IDLE
    return {"rows": rows, "states": states, "poll": htmx.poll(last, _version(rows, states), fast, GRID_AFTER)}


def _version(rows: list[EnvironmentRow], states: dict[int, dict]) -> str:
    """Names what the grid shows: equal versions, equal cells."""
    cells = [(r.id, r.name, r.description, r.enabled, states[r.id]["busy"], len(states[r.id]["queue"]),
              _current(states[r.id]), states[r.id]["hold"]) for r in rows]
    return hashlib.blake2b(repr(cells).encode(), digest_size=8).hexdigest()


def _current(state: dict) -> tuple | None:
    run = state["current"]
    return (run.id, run.started_at.isoformat() if run.started_at else None) if run else None


def activity(env: EnvironmentRow) -> dict:
    """What the environment's page shows: who holds it, who waits, what ran; live while busy or waited on."""
    state = services.status([env])[env.id]
    return {"env": env, "state": state, "live": bool(state["busy"] or state["queue"]),
            "queued": services.queued_runs(state["queue"]), "recent": services.recent_runs(env.id),
            "charts": lambda: usage.environment_charts(env.id)}


def detail(env: EnvironmentRow, form=None, hold_form=None, release_form=None, secret_form=None) -> dict:
    """The environment page's forms (each posted to its own URL; a refused one comes back with its errors)."""
    form = form or EnvironmentForm(formdata=None, obj=env)
    form.setup.choices = form.teardown.choices = stage_choices()
    return {"form": form, "hold_form": hold_form or HoldForm(formdata=None),
            "release_form": release_form or ReleaseForm(formdata=None), "hold": holds.as_json(env),
            "secret_form": secret_form or SecretForm(formdata=None), "delete_secret": SecretDeleteForm(formdata=None),
            **activity(env)}


def stage_choices() -> list[tuple[str, str]]:
    return [("", "— none —")] + [(f["path"], f["path"]) for f in testfiles.list_files()]
