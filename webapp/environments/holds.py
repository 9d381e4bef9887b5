"""Holds: an operator keeps new runs off an environment (the running one finishes, queued ones wait) until
a release or the hold's end. Holding a held environment replaces its hold (new holder, reason and end).
``dispatch.dispatch`` reads the hold with the queue's head; here a hold is set, released and expired."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from .. import inputs
from ..audit import services as audit
from ..db import update as sql_update
from ..db import utcnow
from ..domain import holds
from ..domain.accounts import Principal
from ..domain.errors import Forbidden, InvalidStateError
from ..domain.events import EventSource
from ..events import services as events
from ..extensions import db
from ..models import EnvironmentRow
from ..runs import dispatch
from .services import get


def as_json(row: EnvironmentRow, now: datetime | None = None) -> dict | None:
    """``{"by", "reason", "until", "until_released"}`` while held; None when not (an expired hold is no hold).
    ``until_released``: Cutover held it (a teardown failed or never ran) until an admin releases it."""
    if not holds.active(row.hold_until, now or utcnow()):
        return None
    return {"by": row.hold_by, "reason": row.hold_reason, "until": row.hold_until.isoformat(),
            "until_released": holds.until_released(row.hold_until)}


def hold(environment_id: int, data: Any, username: str, actor: Principal | None = None) -> EnvironmentRow:
    clean = inputs.hold(data)
    row = get(environment_id)
    _only_an_admin_ends(row, actor, "replace")
    row.hold_by, row.hold_reason = username[:64], clean["reason"]
    row.hold_until = utcnow() + timedelta(minutes=clean["minutes"])
    audit.record("environment.hold", f"environment:{environment_id}", minutes=clean["minutes"],
                 reason=clean["reason"], until=row.hold_until.isoformat())
    db.session.commit()
    return row


def release(environment_id: int, actor: Principal | None = None) -> EnvironmentRow:
    """End a hold now; the queue's head starts at once."""
    row = get(environment_id)
    if as_json(row) is None:
        raise InvalidStateError(f"Environment {environment_id} is not held.")
    _only_an_admin_ends(row, actor, "release")
    audit.record("environment.release", f"environment:{environment_id}", by=row.hold_by, reason=row.hold_reason,
                 until=row.hold_until.isoformat())
    _clear(row)
    db.session.commit()
    dispatch.safe_dispatch(environment_id)
    return row


def _only_an_admin_ends(row: EnvironmentRow, actor: Principal | None, verb: str) -> None:
    """A hold Cutover set after a teardown lasts until an admin has checked the environment."""
    if actor is not None and not actor.is_admin and holds.until_released(row.hold_until) \
            and holds.active(row.hold_until, utcnow()):
        raise Forbidden(f"Only an admin may {verb} this hold ({row.hold_reason}): the environment may be dirty.")


def _clear(row: EnvironmentRow) -> None:
    row.hold_by = row.hold_reason = row.hold_until = None


def expire(now: datetime | None = None) -> int:
    """Maintenance: clear the holds that ended, tell each holder, hand each environment on. Returns how many."""
    now = now or utcnow()
    ended = list(db.session.scalars(select(EnvironmentRow).where(EnvironmentRow.hold_until.is_not(None),
                                                                  EnvironmentRow.hold_until <= now)))
    cleared = 0
    for row in ended:
        who, why, until = row.hold_by, row.hold_reason, row.hold_until
        fenced = db.session.execute(sql_update(EnvironmentRow).where(  # a new hold set meanwhile stays
            EnvironmentRow.id == row.id, EnvironmentRow.hold_until == until)
            .values(hold_by=None, hold_reason=None, hold_until=None)).rowcount
        if not fenced:
            db.session.rollback()
            continue
        event = events.notify(who, f"Your hold on environment {row.id} expired.", EventSource.ENVIRONMENT,
                              "environments.detail", environment_id=row.id)
        event_id = event.id if event is not None else None
        audit.record("environment.release", f"environment:{row.id}", actor="system", expired=True, by=who,
                     reason=why, until=until.isoformat())
        db.session.commit()
        cleared += 1
        if event_id is not None:
            events.queue(event_id)
        dispatch.safe_dispatch(row.id)
    db.session.rollback()
    return cleared
