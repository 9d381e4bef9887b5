"""``services.run`` on SQLite usually starts a migration without holding the write lock for its reads
(``migrations/starting.py``): what it records must be what the locked path records, and whatever changes between
its read and its write (another migration of the source starting, an edit of the migration or of its source) must
send it back to the locked path, which decides as it always did."""
from __future__ import annotations

import threading

import pytest
from conftest import make_migration, make_workload, stored_migration

from webapp.domain.errors import PreflightFailed, SystemVolumeRequired
from webapp.extensions import db
from webapp.migrations import services, starting
from webapp.models import AuditRow, MigrationRow, WorkloadRow

pytestmark = pytest.mark.one_database  # the path is SQLite's: elsewhere ``run`` takes the locked path, as it always did

STARTED = ("state", "error", "progress", "job_id", "requested_by", "queued_at", "started_at", "heartbeat_at",
           "finished_at", "updated_at", "cancel_requested", "phase")


def stored(app, migration_id: int) -> dict:
    return stored_migration(app, migration_id, STARTED)


def audited(app, migration_id: int) -> list[tuple[str, dict]]:
    with app.app_context():
        rows = db.session.query(AuditRow).filter(AuditRow.target == f"migration:{migration_id}",
                                                 AuditRow.action.like("migration.r%")).order_by(AuditRow.id).all()
        return [(r.action, r.details or {}) for r in rows]


def queued(app) -> list[str]:
    return [j for q in app.extensions["queues"].values() for j in q.job_ids if j.startswith("migration-")]


@pytest.fixture
def pair(client):
    """Two migrations of one source."""
    source = make_workload(client)
    return source["id"], [make_migration(client, source["id"])["id"] for _ in range(2)]


@pytest.fixture
def unlocked(monkeypatch):
    """Counts the runs that ``starting`` recorded itself (not sent back to the locked path)."""
    calls = {"started": 0}
    real = starting.run_unlocked

    def counted(*args):
        row = real(*args)
        calls["started"] += row is not None
        return row

    monkeypatch.setattr(starting, "run_unlocked", counted)
    return calls


def test_a_run_records_what_the_locked_path_records_and_returns_the_row_as_stored(app, client, pair, unlocked,
                                                                                  monkeypatch):
    _, (first, _) = pair
    second = make_migration(client, make_workload(client, ip="10.0.0.11")["id"])["id"]  # another source
    with app.app_context():
        row = services.run(first, requested_by="alice")
        returned = {name: getattr(row, name) for name in STARTED}
    assert unlocked["started"] == 1
    assert returned == stored(app, first)
    assert returned["state"] == "running" and returned["job_id"].startswith(f"migration-{first}-")
    assert returned["requested_by"] == "alice" and returned["phase"] == "copying"
    assert [p["copied"] for p in returned["progress"]] == [0.0, 0.0] and returned["queued_at"] is not None
    assert audited(app, first) == [("migration.run", {})]
    assert queued(app) == [returned["job_id"]]
    # the locked path, for another one, records the same columns the same way
    monkeypatch.setattr(starting, "run_unlocked", lambda *args: None)
    with app.app_context():
        services.run(second, requested_by="alice")
    locked = stored(app, second)
    assert {k: v for k, v in locked.items() if k not in ("job_id", "queued_at", "updated_at")} == \
        {k: v for k, v in returned.items() if k not in ("job_id", "queued_at", "updated_at")}


def test_another_running_migration_of_the_source_refuses_the_run_through_the_locked_path(app, pair, unlocked):
    _, (first, second) = pair
    with app.app_context():
        services.run(first)
    before = stored(app, second)
    with app.app_context(), pytest.raises(PreflightFailed):
        services.run(second)
    assert unlocked["started"] == 1  # the first only
    assert stored(app, second) == before
    assert audited(app, second) == [("migration.run", {"refused": "preflight_failed", "failed": ["exclusive_source"]})]


def read_then(monkeypatch, app, change) -> None:
    """``change(app)`` runs between the read and the write of ``starting``, in a session of its own."""
    real, pending = starting._startable, [change]

    def startable(row, source):
        migration = real(row, source)
        if pending:  # once: ``change`` may run a migration itself
            with app.app_context():
                pending.pop()(app)
        return migration

    monkeypatch.setattr(starting, "_startable", startable)


def test_a_migration_of_the_same_source_started_between_read_and_write_wins(app, pair, unlocked, monkeypatch):
    _, (first, second) = pair
    read_then(monkeypatch, app, lambda app: services.run(second))
    with app.app_context(), pytest.raises(PreflightFailed):
        services.run(first)
    assert unlocked["started"] == 1  # the second, inside; the first went back to the locked path and was refused
    assert stored(app, first)["state"] == "not_started" and stored(app, second)["state"] == "running"


def test_an_edit_between_read_and_write_is_what_the_locked_path_checks(app, pair, unlocked, monkeypatch):
    _, (first, _) = pair

    def drop_c(app):
        services.update(first, {"selected_mount_points": ["D:\\"]})

    read_then(monkeypatch, app, drop_c)
    with app.app_context(), pytest.raises(SystemVolumeRequired):
        services.run(first)
    assert unlocked["started"] == 0
    after = stored(app, first)
    assert after["state"] == "error" and after["job_id"] is None and queued(app) == []


def test_a_source_edited_between_read_and_write_sends_the_run_to_the_locked_path(app, pair, unlocked, monkeypatch):
    source_id, (first, _) = pair

    def touch(app):
        row = db.session.get(WorkloadRow, source_id)
        row.domain = "ELSEWHERE"
        db.session.commit()

    read_then(monkeypatch, app, touch)
    with app.app_context():
        services.run(first)
    assert unlocked["started"] == 0  # its source changed: the locked path ran it
    assert stored(app, first)["state"] == "running" and len(queued(app)) == 1


def test_runs_of_two_migrations_of_one_source_at_the_same_moment_start_one_only(app, client, unlocked):
    for n in range(8):
        source = make_workload(client, ip=f"10.0.4.{n}")
        ids = [make_migration(client, source["id"])["id"] for _ in range(2)]
        barrier, answers = threading.Barrier(2), {}

        def run(migration_id):
            barrier.wait()
            with app.app_context():
                try:
                    services.run(migration_id)
                    answers[migration_id] = "started"
                except PreflightFailed:
                    answers[migration_id] = "refused"

        threads = [threading.Thread(target=run, args=(m,)) for m in ids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        assert sorted(answers.values()) == ["refused", "started"], answers
        assert sorted(stored(app, m)["state"] for m in ids) == ["not_started", "running"]
