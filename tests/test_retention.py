"""RETENTION_DAYS: the maintenance loop deletes old run logs and results, and old processed events with their
read inbox entries, in short batches; the run rows and their summaries stay, and everything else is kept."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from webapp import create_app, retention
from webapp.db import utcnow
from webapp.extensions import db
from webapp.models import AuditRow, EventRow, NotificationRow, RunLogChunk, RunRow, TestResultRow
from webapp.workers import maintenance_tick

OLD, RECENT = timedelta(days=91), timedelta(days=89)
SUMMARY = {"total": 1, "passed": 1, "failed": 0, "errors": 0, "skipped": 0}
TESTS = [{"name": "test_a", "outcome": "passed"}]


def add_run(state="success", ago=OLD, chunks=2) -> int:
    now = utcnow()
    finished = now - ago if state not in ("queued", "running") else None
    row = RunRow(username="admin", environment_id=1, test_files=["sample_tests/test_a.py"], state=state,
                 summary=SUMMARY, tests=TESTS, junit_xml="<testsuites/>", created_at=now - ago,
                 started_at=now - ago, finished_at=finished, log_size=10 * chunks)
    db.session.add(row)
    db.session.flush()
    for n in range(chunks):
        db.session.add(RunLogChunk(run_id=row.id, start=10 * n, end=10 * n + 10, text="0123456789"))
    db.session.add(TestResultRow(run_id=row.id, environment_id=1, nodeid="sample_tests/test_a.py::test_a",
                                 outcome="failed", duration=0.5, message="assert 1 == 2", details="Traceback ..."))
    db.session.commit()
    return row.id


def result_of(run_id: int) -> tuple:
    row = db.session.scalar(select(TestResultRow).where(TestResultRow.run_id == run_id))
    return row.outcome, row.duration, row.message, row.details


def add_event(status="processed", ago=OLD, read_ago=OLD, notified=True) -> str:
    now = utcnow()
    event_id = str(uuid.uuid4())
    db.session.add(EventRow(id=event_id, user_id="admin", description="d", status=status, created_at=now - ago,
                            queued_at=now - ago, processed_at=now - ago if status == "processed" else None))
    db.session.flush()
    if notified:
        db.session.add(NotificationRow(event_id=event_id, user_id="admin", text="d", created_at=now - ago,
                                       read_at=None if read_ago is None else now - read_ago))
    db.session.commit()
    return event_id


def chunks_of(run_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(RunLogChunk).where(RunLogChunk.run_id == run_id))


def audit_entries() -> list[AuditRow]:
    return list(db.session.scalars(select(AuditRow).where(AuditRow.action == "retention.prune")))


def test_old_finished_runs_lose_log_junit_and_tests_but_keep_the_row_and_summary(app, client):
    with app.app_context():
        old = {state: add_run(state) for state in ("success", "failed", "error", "cancelled")}
        recent = add_run("success", RECENT)
        live = [add_run("running"), add_run("queued")]
        counts = retention.prune()
        assert counts == {"run_logs": 8, "run_results": 4, "notifications": 0, "events": 0, "backlog": False}
        db.session.expire_all()
        for state, run_id in old.items():
            row = db.session.get(RunRow, run_id)
            assert (row.state, row.summary, row.tests, row.junit_xml, chunks_of(run_id)) == (state, SUMMARY, None,
                                                                                            None, 0)
            assert result_of(run_id) == ("failed", 0.5, "assert 1 == 2", None)  # the history stays, no traceback
        for run_id in [recent, *live]:
            row = db.session.get(RunRow, run_id)
            assert (row.tests, row.junit_xml, chunks_of(run_id)) == (TESTS, "<testsuites/>", 2)
            assert result_of(run_id)[3] == "Traceback ..."
        [entry] = audit_entries()
        assert (entry.actor, entry.via, entry.details["run_logs"], entry.details["run_results"]) == \
            ("system", "worker", 8, 4)
        assert retention.prune()["run_logs"] == 0 and len(audit_entries()) == 1  # nothing left: no new entry
    run_id = old["success"]
    as_json = client.get(f"/api/v1/runs/{run_id}").json
    assert (as_json["summary"], as_json["state"]) == ({**SUMMARY, "xfailed": 0, "xpassed": 0}, "success")
    assert [(t["nodeid"], t["outcome"], t["message"], t["details"]) for t in as_json["tests"]] == [
        ("sample_tests/test_a.py::test_a", "failed", "assert 1 == 2", None)]  # each test's outcome stays
    assert client.get(f"/api/v1/runs/{run_id}/log").json["text"] == ""
    assert client.get(f"/api/v1/runs/{run_id}/junit.xml").status_code == 404
    page = client.get(f"/runs/{run_id}")
    assert page.status_code == 200 and "deleted by retention" in page.get_data(as_text=True)


def test_old_processed_events_go_with_their_read_notifications_and_the_rest_stays(app):
    with app.app_context():
        gone = [add_event(), add_event(notified=False)]  # read long ago; never delivered to an inbox
        kept = [add_event(read_ago=None), add_event(read_ago=RECENT), add_event(ago=RECENT, read_ago=RECENT),
                add_event(status="pending", notified=False), add_event(status="failed", read_ago=OLD)]
        counts = retention.prune()
        assert (counts["events"], counts["notifications"]) == (2, 1)
        db.session.expire_all()
        assert set(db.session.scalars(select(EventRow.id))) == set(kept) and not set(gone) & set(kept)
        assert set(db.session.scalars(select(NotificationRow.event_id))) == set(kept) - {kept[3]}


def test_more_rows_than_a_batch_go_over_several_passes(app):
    with app.app_context():
        runs = [add_run(chunks=3) for _ in range(3)]  # 9 chunks
        events = [add_event() for _ in range(5)]
        first = retention.prune(batch=2, batches=2)
        assert (first["run_logs"], first["run_results"], first["events"], first["backlog"]) == (4, 3, 4, True)
        second = retention.prune(batch=2, batches=2)
        assert (second["run_logs"], second["run_results"], second["events"], second["backlog"]) == (4, 0, 1, True)
        third = retention.prune(batch=2, batches=2)
        assert (third["run_logs"], third["backlog"]) == (1, False)
        assert sum(chunks_of(r) for r in runs) == 0 and db.session.scalar(select(func.count(EventRow.id))) == 0
        assert len(audit_entries()) == 3  # one per pass that deleted something
        assert not set(events) & set(db.session.scalars(select(NotificationRow.event_id)))


def test_the_maintenance_tick_prunes_and_goes_on_at_once_while_a_backlog_is_left(app, monkeypatch):
    monkeypatch.setattr(retention, "BATCH_ROWS", 2)
    monkeypatch.setattr(retention, "BATCHES", 1)
    with app.app_context():
        add_run(chunks=3)
    assert maintenance_tick(app)["retention"] == {"run_logs": 2, "run_results": 1, "notifications": 0, "events": 0}
    assert maintenance_tick(app)["retention"]["run_logs"] == 1  # the backlog: not held back by the interval
    with app.app_context():
        add_run(chunks=1)
    assert maintenance_tick(app)["retention"]["run_logs"] == 0  # no backlog: the next pass waits the interval


def test_retention_days_0_or_empty_keeps_everything(config):
    for value in (0, "0", ""):
        app = create_app({**config, "RETENTION_DAYS": value})
        with app.app_context():
            run_id, event_id = add_run(ago=timedelta(days=3650)), add_event(ago=timedelta(days=3650))
            assert retention.prune()["run_logs"] == 0
            assert maintenance_tick(app)["retention"] == retention.empty_counts()
            assert chunks_of(run_id) == 2 and db.session.get(EventRow, event_id) is not None
            assert db.session.get(RunRow, run_id).junit_xml == "<testsuites/>"
        app.extensions["db"].kw["bind"].dispose()


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "99999999"])
def test_a_bad_retention_days_stops_the_start_and_says_why(config, value):
    with pytest.raises(RuntimeError, match="RETENTION_DAYS"):
        create_app({**config, "RETENTION_DAYS": value})


def test_retention_days_defaults_to_90(config, monkeypatch):
    monkeypatch.delenv("RETENTION_DAYS", raising=False)
    from webapp import config as settings

    assert settings.load({k: v for k, v in config.items()})["RETENTION_DAYS"] == 90


def test_each_retention_pass_is_counted_in_metrics(app, client, monkeypatch):
    from prometheus_client.parser import text_string_to_metric_families

    monkeypatch.setattr(retention, "BATCH_ROWS", 2)
    monkeypatch.setattr(retention, "BATCHES", 1)
    with app.app_context():
        add_run(chunks=3)
    maintenance_tick(app)  # a pass, with a backlog left
    maintenance_tick(app)  # and the next one at once
    text = client.get("/metrics", headers={"Authorization": f"Bearer {client.token}"}).get_data(as_text=True)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("cutover_retention_passes_total", ())] == 2
    assert samples[("cutover_retention_deleted_total", (("kind", "run_logs"),))] == 3
    assert samples[("cutover_retention_deleted_total", (("kind", "run_results"),))] == 1
    assert samples[("cutover_retention_deleted_total", (("kind", "events"),))] == 0
