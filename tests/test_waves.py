"""Waves over HTTP and with real workers: create (and every refusal, field by field), FIFO with at most
``max_parallel`` running, a schedule the maintenance loop starts on time (and after a restart), stop_on_error,
pause/resume, cancel, the creator's event, the audit trail, and who may do what."""
from __future__ import annotations

import itertools
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from conftest import make_migration, make_workload, start_workers, user_client, wait_until
from webapp import create_app
from webapp.db import update, utcnow
from webapp.workers import maintenance_tick


IPS = itertools.count(1)


def migrations_of(client, n: int, **kw) -> list[int]:
    ids = []
    for _ in range(n):
        i = next(IPS)
        workload = make_workload(client, ip=f"10.9.{i // 200}.{i % 200 + 1}")
        ids.append(make_migration(client, workload["id"], **kw)["id"])
    return ids


def new_wave(client, ids, **body):
    return client.post("/api/v1/waves", json={"name": "wave", "migration_ids": ids, **body})


def wave(client, wave_id: int) -> dict:
    response = client.get(f"/api/v1/waves/{wave_id}")
    assert response.status_code == 200, response.json
    return response.json


def migration(client, migration_id: int) -> dict:
    return client.get(f"/api/v1/migrations/{migration_id}").json


def in_the_future(seconds: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).isoformat()


# --- create ------------------------------------------------------------------------------------------

def test_a_wave_scheduled_later_is_created_with_its_fields_and_waits(client):
    ids = migrations_of(client, 2)
    at = in_the_future(3600)
    response = new_wave(client, ids, max_parallel=2, start_at=at, stop_on_error=True)
    assert response.status_code == 201, response.json
    body = response.json
    assert response.headers["Location"].endswith(f"/api/v1/waves/{body['id']}")
    assert set(body) == {"id", "name", "state", "max_parallel", "start_at", "stop_on_error", "counts", "migrations",
                         "created_at", "started_at", "finished_at"}
    assert (body["state"], body["max_parallel"], body["stop_on_error"], body["migrations"]) == (
        "scheduled", 2, True, ids)
    assert datetime.fromisoformat(body["start_at"]) == datetime.fromisoformat(at)
    assert body["counts"] == {"not_started": 2, "running": 0, "success": 0, "error": 0}
    assert body["started_at"] is None and body["finished_at"] is None
    assert [migration(client, i)["state"] for i in ids] == ["not_started", "not_started"]
    listed = client.get("/api/v1/waves").json
    assert listed["total"] == 1 and listed["items"][0]["id"] == body["id"] and listed["page"] == 1


def test_a_start_at_without_a_timezone_is_taken_as_utc(client):
    ids = migrations_of(client, 1)
    body = new_wave(client, ids, start_at="2999-01-31T22:00:00").json
    assert body["start_at"] == "2999-01-31T22:00:00+00:00" and body["state"] == "scheduled"


@pytest.mark.parametrize("body, field", [
    ({"name": ""}, "name"),
    ({"name": "x" * 129}, "name"),
    ({"name": None}, "name"),
    ({"migration_ids": []}, "migration_ids"),
    ({"migration_ids": "1"}, "migration_ids"),
    ({"migration_ids": [1, 1]}, "migration_ids"),
    ({"migration_ids": [999]}, "migration_ids"),
    ({"migration_ids": [True]}, "migration_ids"),
    ({"max_parallel": 0}, "max_parallel"),
    ({"max_parallel": 51}, "max_parallel"),
    ({"max_parallel": "3"}, "max_parallel"),
    ({"start_at": "tomorrow"}, "start_at"),
    ({"start_at": 1700000000}, "start_at"),
    ({"stop_on_error": "yes"}, "stop_on_error"),
    ({"colour": "blue"}, "colour"),
])
def test_each_invalid_field_is_refused_with_its_own_message(client, body, field):
    ids = migrations_of(client, 1)
    response = client.post("/api/v1/waves", json={"name": "w", "migration_ids": ids, "max_parallel": 1, **body})
    assert response.status_code == 422, response.json
    error = response.json["error"]
    assert error["code"] == "validation_error" and list(error["fields"]) == [field], error
    assert client.get("/api/v1/waves").json["total"] == 0


def test_every_field_s_error_comes_back_at_once(client):
    response = client.post("/api/v1/waves", json={"migration_ids": [], "max_parallel": 99, "start_at": "x",
                                                  "stop_on_error": 1})
    assert response.status_code == 422
    assert set(response.json["error"]["fields"]) == {"name", "migration_ids", "max_parallel", "start_at",
                                                     "stop_on_error"}
    assert client.post("/api/v1/waves", data="[1]", content_type="application/json").status_code == 400


def test_a_migration_in_an_unfinished_wave_cannot_join_another_but_may_after_it_ended(client):
    ids = migrations_of(client, 2)
    first = new_wave(client, ids, start_at=in_the_future(3600)).json
    response = new_wave(client, [ids[1]])
    assert response.status_code == 422
    message = response.json["error"]["fields"]["migration_ids"][0]
    assert f"#{ids[1]}" in message and f"wave #{first['id']}" in message
    assert client.post(f"/api/v1/waves/{first['id']}/cancel").status_code == 200
    again = new_wave(client, [ids[1]], start_at=in_the_future(3600))
    assert again.status_code == 201, again.json


def test_a_migrated_or_running_migration_is_refused(client, work):
    done, running = migrations_of(client, 2)
    assert client.post(f"/api/v1/migrations/{done}/run").status_code == 202
    work()
    assert client.post(f"/api/v1/migrations/{running}/run").status_code == 202  # no worker: stays running
    response = new_wave(client, [done, running])
    fields = response.json["error"]["fields"]["migration_ids"]
    assert response.status_code == 422 and len(fields) == 2
    assert "already migrated" in fields[0] and "running" in fields[1]


# --- the engine, with real workers ---------------------------------------------------------------

def intervals(client, ids) -> list[tuple[datetime, datetime]]:
    found = []
    for i in ids:
        m = migration(client, i)
        found.append((datetime.fromisoformat(m["started_at"]), datetime.fromisoformat(m["finished_at"])))
    return found


def most_at_once(spans) -> int:
    points = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda p: (p[0], p[1]))
    now = best = 0
    for _, step in points:
        now += step
        best = max(best, now)
    return best


def test_ten_migrations_with_max_parallel_3_never_run_more_than_3_at_once_and_start_in_order(
        app, client, worker_processes):
    ids = migrations_of(client, 10)
    worker_processes(4, MIGRATION_DURATION_SECONDS=1.0)  # more workers than slots: the wave is the limit
    created = new_wave(client, ids, max_parallel=3)
    assert created.status_code == 201 and created.json["state"] == "running"
    assert created.json["counts"]["running"] == 3 and created.json["counts"]["not_started"] == 7
    wave_id = created.json["id"]
    seen = []

    def ended():
        body = wave(client, wave_id)
        seen.append(body["counts"]["running"])
        return body["state"] == "done" and body

    body = wait_until(ended, timeout=60, interval=0.1, message="the wave to be done")
    assert body["counts"] == {"not_started": 0, "running": 0, "success": 10, "error": 0}
    assert max(seen) <= 3
    spans = intervals(client, ids)
    assert most_at_once(spans) == 3
    queued = [migration(client, i) for i in ids]
    from webapp.extensions import db
    from webapp.models import MigrationRow
    with app.app_context():
        queued_at = dict(db.session.execute(select(MigrationRow.id, MigrationRow.queued_at)).all())
    assert [queued_at[i] for i in ids] == sorted(queued_at[i] for i in ids)  # FIFO: in the list's order
    assert all(m["requested_by"] == "admin" for m in queued)
    assert datetime.fromisoformat(body["finished_at"]) >= max(e for _, e in spans)


def test_a_scheduled_wave_is_started_by_the_maintenance_loop_within_5_s(config, client, worker_processes):
    ids = migrations_of(client, 2)
    # the real loop, at its real interval, in a worker that is up (its start-up on a loaded machine is not timed)
    start_workers(config, worker_processes, MAINTENANCE_INTERVAL_SECONDS=2)
    start_at = datetime.now(timezone.utc) + timedelta(seconds=3)
    body = new_wave(client, ids, max_parallel=2, start_at=start_at.isoformat()).json
    assert body["state"] == "scheduled"
    time.sleep(max(0.0, (start_at - datetime.now(timezone.utc)).total_seconds() - 1))
    assert wave(client, body["id"])["state"] == "scheduled"  # not early
    started = wait_until(lambda: wave(client, body["id"])["started_at"], timeout=8, interval=0.1,
                         message="the wave to start")
    assert datetime.fromisoformat(started) >= start_at
    assert datetime.fromisoformat(started) - start_at < timedelta(seconds=5)
    wait_until(lambda: wave(client, body["id"])["state"] == "done", timeout=30, message="the wave to be done")


def test_a_schedule_survives_a_restart_of_the_app(app, client, config, work):
    ids = migrations_of(client, 1)
    body = new_wave(client, ids, start_at=in_the_future(1)).json
    app.extensions["db"].kw["bind"].dispose()
    again = create_app(config)  # a new process, the same database
    assert maintenance_tick(again)["waves"] == {"advanced": 0, "ended": 0}  # not due yet
    time.sleep(1.1)
    assert maintenance_tick(again)["waves"]["advanced"] == 1
    assert wave(client, body["id"])["state"] == "running"
    work()
    assert wave(client, body["id"])["state"] == "done"
    again.extensions["db"].kw["bind"].dispose()


def drop_system_volume(app, migration_id: int) -> None:
    """Make ``run`` refuse the migration: its selection no longer holds C:\\ (as if edited underneath)."""
    from webapp.extensions import db
    from webapp.models import MigrationRow

    with app.app_context():
        db.session.execute(update(MigrationRow).where(MigrationRow.id == migration_id).values(selected=["D:\\"]))
        db.session.commit()


def test_stop_on_error_starts_no_new_migration_after_the_first_error(app, client, work):
    ids = migrations_of(client, 4)
    drop_system_volume(app, ids[1])
    body = new_wave(client, ids, max_parallel=1, stop_on_error=True).json
    assert body["counts"]["running"] == 1
    work()  # the first succeeds; the second is refused by the C:\ rule; no third is started
    body = wave(client, body["id"])
    assert body["state"] == "failed" and body["finished_at"]
    assert body["counts"] == {"not_started": 2, "running": 0, "success": 1, "error": 1}
    assert migration(client, ids[1])["error"] == "The system volume C:\\ must be selected."
    assert [migration(client, i)["state"] for i in ids[2:]] == ["not_started", "not_started"]


def test_a_source_edited_to_lose_its_system_volume_fails_its_migration_and_stops_the_wave(client, work):
    ids = migrations_of(client, 3)
    source = migration(client, ids[1])["source_id"]
    edited = client.patch(f"/api/v1/workloads/{source}", json={"storage": [{"name": "D:\\", "size": 100}]})
    assert edited.status_code == 200, edited.json
    body = new_wave(client, ids, max_parallel=1, stop_on_error=True).json
    work()
    body = wave(client, body["id"])
    assert body["state"] == "failed"
    assert body["counts"] == {"not_started": 1, "running": 0, "success": 1, "error": 1}
    failed = migration(client, ids[1])
    assert failed["state"] == "error" and failed["error"].startswith("preflight failed: "), failed
    assert "C:\\" in failed["error"], failed


def test_without_stop_on_error_the_wave_goes_on_and_ends_failed(app, client, work):
    ids = migrations_of(client, 3)
    drop_system_volume(app, ids[0])
    body = new_wave(client, ids, max_parallel=1).json
    work()
    body = wave(client, body["id"])
    assert body["state"] == "failed"
    assert body["counts"] == {"not_started": 0, "running": 0, "success": 2, "error": 1}


def test_a_refusal_of_run_ends_a_not_started_migration_in_error_and_the_wave_goes_on(app, client, work, monkeypatch):
    from webapp.domain.errors import ValidationError
    from webapp.migrations import services as migrations

    ids = migrations_of(client, 2)
    real = migrations.run

    def refuse_first(migration_id, requested_by=None):
        if migration_id == ids[0]:
            raise ValidationError({"preflight": ["the target cloud is unreachable"]}, "Preflight checks failed.")
        return real(migration_id, requested_by)

    monkeypatch.setattr(migrations, "run", refuse_first)
    body = new_wave(client, ids, max_parallel=1).json
    first = migration(client, ids[0])
    assert first["state"] == "error"
    assert first["error"] == "preflight failed: Preflight checks failed. (the target cloud is unreachable)"
    assert body["counts"] == {"not_started": 0, "running": 1, "success": 0, "error": 1}
    work()
    assert wave(client, body["id"])["state"] == "failed"


def test_two_migrations_of_one_source_run_one_after_the_other_not_in_error(client, work):
    """The preflight refuses a second running migration of a source: the wave waits for the first instead."""
    i = next(IPS)
    source = make_workload(client, ip=f"10.9.{i // 200}.{i % 200 + 1}")["id"]
    ids = [make_migration(client, source)["id"] for _ in range(2)]
    body = new_wave(client, ids, max_parallel=2).json
    assert body["counts"] == {"not_started": 1, "running": 1, "success": 0, "error": 0}
    assert migration(client, ids[1])["state"] == "not_started"
    work()
    body = wave(client, body["id"])
    assert body["state"] == "done" and body["counts"]["success"] == 2, body


def test_pause_holds_new_starts_and_resume_goes_on(app, client, work):
    ids = migrations_of(client, 3)
    body = new_wave(client, ids, max_parallel=1).json
    paused = client.post(f"/api/v1/waves/{body['id']}/pause")
    assert paused.status_code == 200 and paused.json["state"] == "paused"
    work()  # the running one finishes; no next one starts
    body = wave(client, body["id"])
    assert body["state"] == "paused" and body["counts"] == {"not_started": 2, "running": 0, "success": 1, "error": 0}
    assert client.post(f"/api/v1/waves/{body['id']}/pause").json["error"]["code"] == "invalid_state"
    resumed = client.post(f"/api/v1/waves/{body['id']}/resume")
    assert resumed.status_code == 200 and resumed.json["state"] == "running"
    assert resumed.json["counts"]["running"] == 1
    work()
    assert wave(client, body["id"])["state"] == "done"
    assert client.post(f"/api/v1/waves/{body['id']}/resume").status_code == 409


def test_a_paused_wave_with_nothing_left_to_start_ends_when_its_last_migration_does(client, work):
    ids = migrations_of(client, 2)
    body = new_wave(client, ids, max_parallel=2).json
    assert client.post(f"/api/v1/waves/{body['id']}/pause").json["state"] == "paused"
    work()
    body = wave(client, body["id"])
    assert body["state"] == "done" and body["counts"]["success"] == 2


def test_a_paused_scheduled_wave_resumes_to_scheduled(client):
    ids = migrations_of(client, 1)
    body = new_wave(client, ids, start_at=in_the_future(3600)).json
    assert client.post(f"/api/v1/waves/{body['id']}/pause").json["state"] == "paused"
    assert client.post(f"/api/v1/waves/{body['id']}/resume").json["state"] == "scheduled"


def test_cancel_stops_what_runs_and_leaves_the_rest_not_started(app, client, worker_processes):
    ids = migrations_of(client, 4)
    worker_processes(2, MIGRATION_DURATION_SECONDS=5)
    body = new_wave(client, ids, max_parallel=2).json
    wait_until(lambda: all(migration(client, i)["started_at"] for i in ids[:2]), timeout=15,
               message="two copies to start")
    cancelled = client.post(f"/api/v1/waves/{body['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json["state"] == "cancelled"
    assert cancelled.json["finished_at"]
    wait_until(lambda: all(migration(client, i)["state"] == "error" for i in ids[:2]), timeout=10,
               message="the running migrations to be cancelled")
    assert [migration(client, i)["error"] for i in ids[:2]] == ["cancelled", "cancelled"]
    assert [migration(client, i)["state"] for i in ids[2:]] == ["not_started", "not_started"]
    body = wave(client, body["id"])
    assert body["state"] == "cancelled"
    assert body["counts"] == {"not_started": 2, "running": 0, "success": 0, "error": 2}
    for action in ("pause", "resume", "cancel"):
        refused = client.post(f"/api/v1/waves/{body['id']}/{action}")
        assert refused.status_code == 409 and refused.json["error"]["code"] == "invalid_state"


def test_advance_called_again_and_again_changes_nothing_more(app, client):
    from webapp.waves import engine as waves

    ids = migrations_of(client, 5)
    body = new_wave(client, ids, max_parallel=2).json
    with app.app_context():
        for _ in range(5):
            assert waves.advance(body["id"]) == "running"
        assert waves.advance(999) is None
    assert wave(client, body["id"])["counts"]["running"] == 2


def test_unknown_waves_are_404(client):
    assert client.get("/api/v1/waves/999").status_code == 404
    for action in ("pause", "resume", "cancel"):
        assert client.post(f"/api/v1/waves/999/{action}").json["error"]["code"] == "not_found"


# --- the creator's event, the audit trail, roles -------------------------------------------------------

def test_the_creator_is_told_when_the_wave_ends_and_every_change_is_audited(app, client, work):
    operator = user_client(app, "olga", "operator")
    ids = migrations_of(client, 2)
    body = new_wave(operator, ids, max_parallel=2).json
    work()
    assert wave(client, body["id"])["state"] == "done"
    events = client.get("/api/v1/events", query_string={"user_id": "olga"}).json["items"]
    told = [e for e in events if e["source"] == "wave"]
    assert len(told) == 1 and told[0]["link"] == f"/waves/{body['id']}"
    assert f"Wave #{body['id']} (wave) ended done: 2 of 2" in told[0]["description"]
    other = new_wave(operator, migrations_of(client, 1)[:1], start_at=in_the_future(3600)).json
    for action in ("pause", "resume", "cancel"):
        assert operator.post(f"/api/v1/waves/{other['id']}/{action}").status_code == 200
    entries = client.get("/api/v1/audit", query_string={"action": "wave", "per_page": 50}).json["items"]
    got = sorted((e["action"], e["target"], e["actor"]) for e in entries)
    assert got == sorted([
        ("wave.create", f"wave:{body['id']}", "olga"), ("wave.start", f"wave:{body['id']}", "olga"),
        ("wave.end", f"wave:{body['id']}", "system"), ("wave.create", f"wave:{other['id']}", "olga"),
        ("wave.pause", f"wave:{other['id']}", "olga"), ("wave.resume", f"wave:{other['id']}", "olga"),
        ("wave.cancel", f"wave:{other['id']}", "olga")])
    cancelled = [e for e in client.get("/api/v1/events", query_string={"user_id": "olga"}).json["items"]
                 if "ended cancelled" in e["description"]]
    assert len(cancelled) == 1


def test_a_viewer_reads_waves_but_may_not_create_pause_resume_or_cancel_them(app, client, as_role):
    ids = migrations_of(client, 2)
    body = new_wave(client, ids[:1], start_at=in_the_future(3600)).json
    viewer = as_role("viewer")
    assert viewer.get("/api/v1/waves").status_code == 200
    assert viewer.get(f"/api/v1/waves/{body['id']}").status_code == 200
    assert viewer.get("/waves/").status_code == 200 and viewer.get(f"/waves/{body['id']}").status_code == 200
    refused = new_wave(viewer, ids[1:])
    assert refused.status_code == 403 and refused.json["error"]["code"] == "forbidden"
    for action in ("pause", "resume", "cancel"):
        assert viewer.post(f"/api/v1/waves/{body['id']}/{action}").status_code == 403
        assert viewer.post(f"/waves/{body['id']}/{action}").status_code == 403
    assert viewer.post("/waves/new", data={"name": "v", "migration_ids": [str(ids[1])], "save": "Create wave"}
                       ).status_code == 403
    assert wave(client, body["id"])["state"] == "scheduled" and client.get("/api/v1/waves").json["total"] == 1
    page = viewer.get("/waves/").get_data(as_text=True)
    assert "New wave" not in page
    detail = viewer.get(f"/waves/{body['id']}").get_data(as_text=True)
    assert "Cancel wave" not in detail


# --- the pages -------------------------------------------------------------------------------------

def test_the_new_wave_form_creates_a_wave_and_shows_errors_beside_their_fields(app, client):
    ids = migrations_of(client, 3)
    page = client.get("/waves/").get_data(as_text=True)
    assert "New wave" in page and 'type="datetime-local"' in page and "UTC" in page
    for i in ids:
        assert f'name="migration_ids" value="{i}"' in page
    bad = client.post("/waves/new", data={"name": "", "max_parallel": "0", "start_at": "", "save": "Create wave"})
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert "Name is required" in html and "Choose at least one migration" in html and "from 1 to 50" in html
    made = client.post("/waves/new", data={"name": "Finance", "migration_ids": [str(ids[2]), str(ids[0])],
                                           "max_parallel": "2", "start_at": "2999-05-01T10:30",
                                           "stop_on_error": "y", "save": "Create wave"})
    assert made.status_code == 303
    body = client.get("/api/v1/waves").json["items"][0]
    assert made.headers["Location"].endswith(f"/waves/{body['id']}")
    assert (body["name"], body["migrations"], body["max_parallel"], body["stop_on_error"], body["start_at"]) == (
        "Finance", [ids[2], ids[0]], 2, True, "2999-05-01T10:30:00+00:00")
    page = client.get("/waves/").get_data(as_text=True)
    assert f'value="{ids[0]}"' not in page and f'value="{ids[1]}"' in page  # in an unfinished wave: not offered


def test_the_wave_page_polls_until_the_wave_ends_and_its_buttons_are_real_forms(app, client, work):
    ids = migrations_of(client, 2)
    body = new_wave(client, ids, max_parallel=1).json
    page = client.get(f"/waves/{body['id']}").get_data(as_text=True)
    assert 'aria-live="polite"' in page and 'id="wave-progress"' in page and "hx-trigger" in page
    assert page.count("<progress") == 3  # overall and one per migration
    for action in ("pause", "cancel"):
        form = page.split(f'<form method="post" action="/waves/{body["id"]}/{action}"', 1)[1].split("</form>")[0]
        assert 'name="csrf_token"' in form and 'type="submit"' in form
    assert f'action="/waves/{body["id"]}/resume"' not in page  # running: nothing to resume
    fragment = client.get(f"/waves/{body['id']}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert fragment.lstrip().startswith('<section id="wave-progress"') and "<html" not in fragment
    paused = client.post(f"/waves/{body['id']}/pause")
    assert paused.status_code == 303 and wave(client, body["id"])["state"] == "paused"
    assert client.post(f"/waves/{body['id']}/resume", headers={"HX-Request": "true"}).status_code == 200
    work()
    final = client.get(f"/waves/{body['id']}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "done" in final and "hx-trigger" not in final and "<form" not in final
    again = client.post(f"/waves/{body['id']}/pause", headers={"HX-Request": "true"})
    assert again.status_code == 200 and "cannot be paused" in again.get_data(as_text=True)


def test_the_wave_page_shows_validating_for_a_member_in_its_validation_phase(app, client):
    from webapp.extensions import db
    from webapp.models import MigrationRow

    ids = migrations_of(client, 1)
    body = new_wave(client, ids).json
    with app.app_context():
        db.session.execute(update(MigrationRow).where(MigrationRow.id == ids[0]).values(phase="validating"))
        db.session.commit()
    fragment = client.get(f"/waves/{body['id']}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "validating" in fragment


def test_the_list_polls_only_while_a_wave_may_change_soon(client):
    ids = migrations_of(client, 2)
    later = new_wave(client, ids[:1], start_at=in_the_future(3600)).json
    table = lambda: client.get("/waves/", headers={"HX-Request": "true"}).get_data(as_text=True)  # noqa: E731
    assert table().lstrip().startswith('<section id="waves-table">') and "hx-trigger" not in table()
    assert 'hx-trigger="every 5s"' in client.get(f"/waves/{later['id']}").get_data(as_text=True)
    new_wave(client, ids[1:])  # running: no worker here
    assert 'hx-trigger="every 2s"' in table()
    assert "0 ✓ · 0 ✗ · 1 running · 0 waiting" in table() and "0 ✓ · 0 ✗ · 0 running · 1 waiting" in table()


def test_the_nav_links_to_the_waves(client):
    page = client.get("/migrations/").get_data(as_text=True)
    assert 'href="/waves/"' in page


def test_advance_from_many_threads_at_once_never_starts_more_than_max_parallel(app, client):
    """Eight callers (each its own session, as separate processes would be) race for one due wave."""
    import threading

    from webapp.extensions import db
    from webapp.models import AuditRow, WaveRow
    from webapp.waves import engine as waves

    ids = migrations_of(client, 6)
    body = new_wave(client, ids, max_parallel=2, start_at=in_the_future(3600)).json
    with app.app_context():
        db.session.execute(update(WaveRow).where(WaveRow.id == body["id"]).values(start_at=utcnow()))
        db.session.commit()
    barrier, failures = threading.Barrier(8), []

    def race():
        try:
            with app.app_context():
                barrier.wait()
                waves.advance(body["id"])
        except Exception as exc:  # noqa: BLE001  (reported below)
            failures.append(repr(exc))

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    now = wave(client, body["id"])
    assert now["state"] == "running" and now["counts"] == {"not_started": 4, "running": 2, "success": 0, "error": 0}
    with app.app_context():
        actions = list(db.session.scalars(select(AuditRow.action).where(
            AuditRow.action.in_(("wave.start", "migration.run")))))
    assert sorted(actions) == ["migration.run", "migration.run", "wave.start"]


def test_with_csrf_on_the_wave_forms_need_their_token(app, client, config):
    import re

    from conftest import ADMIN, client_as

    ids = migrations_of(client, 2)
    later = new_wave(client, ids[:1], start_at=in_the_future(3600)).json
    guarded = create_app({**config, "WTF_CSRF_ENABLED": True})
    browser = client_as(guarded, ADMIN)
    form = {"name": "csrf", "migration_ids": [str(ids[1])], "max_parallel": "1", "save": "Create wave"}
    assert browser.post("/waves/new", data=form).status_code == 400
    assert browser.post(f"/waves/{later['id']}/cancel").status_code == 400
    assert client.get("/api/v1/waves").json["total"] == 1 and wave(client, later["id"])["state"] == "scheduled"
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                      browser.get("/waves/").get_data(as_text=True)).group(1)
    assert browser.post("/waves/new", data={**form, "csrf_token": token}).status_code == 303
    page = browser.get(f"/waves/{later['id']}").get_data(as_text=True)
    action_token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert browser.post(f"/waves/{later['id']}/cancel", data={"csrf_token": action_token}).status_code == 303
    assert wave(client, later["id"])["state"] == "cancelled"
    guarded.extensions["db"].kw["bind"].dispose()
