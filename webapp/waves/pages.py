"""What the wave pages show, gathered in one place so the views stay thin."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from ..db import utcnow

from ..domain.migration import MigrationState
from ..domain.waves import ACTIONS, UNFINISHED, Member, WaveState, counts
from ..extensions import db
from ..models import MigrationRow, WaveMemberRow, WaveRow
from ..pagination import Page
from ..migrations import services as migrations
from . import services
from .forms import WaveForm

CHOOSABLE = (MigrationState.NOT_STARTED.value, MigrationState.ERROR.value)


def choices() -> list[MigrationRow]:
    """Migrations a new wave may take: not started or in error, and in no unfinished wave."""
    taken = select(WaveMemberRow.migration_id).join(WaveRow, WaveRow.id == WaveMemberRow.wave_id).where(
        WaveRow.state.in_(UNFINISHED))
    return list(db.session.scalars(select(MigrationRow).where(
        MigrationRow.state.in_(CHOOSABLE), MigrationRow.id.not_in(taken)).order_by(MigrationRow.id).limit(500)))


def new_form(formdata=None) -> WaveForm:
    form = WaveForm(formdata=formdata)
    form.migration_ids.choices = [(str(m.id), str(m.id)) for m in choices()]
    return form


def _tallies(wave_ids: list[int]) -> dict[int, dict[str, int]]:
    """The counts of several waves, in one query (for a list)."""
    found: dict[int, list[Member]] = {i: [] for i in wave_ids}
    for wave_id, migration_id, started_at, state in db.session.execute(
            select(WaveMemberRow.wave_id, WaveMemberRow.migration_id, WaveMemberRow.started_at, MigrationRow.state)
            .join(MigrationRow, MigrationRow.id == WaveMemberRow.migration_id)
            .where(WaveMemberRow.wave_id.in_(wave_ids))):
        found[wave_id].append(Member(migration_id, started_at is not None, state))
    return {i: counts(m) for i, m in found.items()}


def listing(page: Page, form: WaveForm | None = None) -> dict:
    """The list (polls while a wave on this page has not ended) and the new-wave form."""
    live = any(_changing(w) for w in page.items)
    tallies = _tallies([w.id for w in page.items])
    options = choices()
    return {"page": page, "keep": page.links(), "live": live, "tallies": tallies, "form": form or new_form(),
            "options": options, "ips": migrations.source_ips(options)}


def _changing(row: WaveRow) -> bool:
    """Whether what the list shows of a wave may change soon: it runs, is paused (its running ones finish), or
    is due within a minute."""
    soon = utcnow() + timedelta(seconds=60)
    return row.state in (WaveState.RUNNING.value, WaveState.PAUSED.value) or (
        row.state == WaveState.SCHEDULED.value and (row.start_at is None or row.start_at <= soon))


def view(wave_id: int, message: str | None = None) -> dict:
    """The wave page and its live fragment: one bar per migration, one overall."""
    row = services.get(wave_id)
    rows = services.members(wave_id)
    ips = migrations.source_ips([m for _, m in rows])
    shown = []
    for member, migration in rows:
        progress = migrations.progress_json(migration)
        started = member.started_at is not None
        shown.append({"id": migration.id, "state": migration.state if started else "not_started",
                      "started": started, "phase": migration.phase, "ip": ips.get(migration.source_id, "?"), "error": migration.error,
                      "percent": progress["percent"] if started else 0.0})
    tally = counts(services.as_members(rows))
    total = sum(tally.values())
    ended = tally["success"] + tally["error"]
    return {"row": row, "members": shown, "counts": tally, "total": total, "ended": ended,
            "final": WaveState(row.state).is_final, "message": message,
            "every": "1s" if row.state == WaveState.RUNNING.value else "5s",
            "actions": [a for a in BUTTONS if WaveState(row.state) in ACTIONS[a[0]]]}


BUTTONS = (("pause", "Pause", "secondary"), ("resume", "Resume", "primary"), ("cancel", "Cancel wave", "danger"))
