"""What a run's teardown leaves on its environment (issue 14): a teardown that failed, timed out or never ran
puts the environment on hold until an admin releases it, so that the next user never gets a dirty
environment. Called with the run's lock still held (before it is released): no run starts in between."""
from __future__ import annotations

from sqlalchemy import select

from ..audit import services as audit
from ..domain import holds, stages
from ..domain.events import EventSource
from ..events import services as events
from ..extensions import db
from ..models import EnvironmentRow, RunRow, UserRow


def hold_if_dirty(run_id: int, teardown: str | None = None) -> list[int]:
    """Hold the run's environment when its teardown did not pass (or did not run); commits. ``teardown``: the
    file the run was given (None: whatever the environment names now, for a run lost with its worker). Returns
    the ids of the events raised (to every admin and the run's user), for the caller to queue."""
    session = db.session
    run = session.get(RunRow, run_id, populate_existing=True)
    environment = run and run.environment_id is not None and session.get(EnvironmentRow, run.environment_id)
    if not environment:
        return []
    reason = stages.hold_reason(run_id, (run.stages or {}).get(stages.TEARDOWN), bool(teardown or environment.teardown))
    if reason is None:
        session.rollback()
        return []
    environment.hold_by, environment.hold_reason = holds.SYSTEM_HOLDER, reason
    environment.hold_until = holds.UNTIL_RELEASED
    audit.record("environment.hold", f"environment:{environment.id}", actor="system", reason=reason, run_id=run_id,
                 until="released by an admin")
    admins = session.scalars(select(UserRow.username).where(UserRow.role == "admin", UserRow.disabled.is_(False)))
    text = (f"Environment {environment.id} ({environment.name}) is on hold: {reason}. "
            "An admin releases it once it is clean.")
    raised = [events.notify(user, text, EventSource.ENVIRONMENT, "environments.detail", environment_id=environment.id)
              for user in dict.fromkeys([*admins, run.username])]
    session.commit()
    return [event.id for event in raised if event is not None]


def queue(event_ids: list[int]) -> None:
    for event_id in event_ids:
        events.queue(event_id)
