"""Migrations on real worker processes: live progress, cancel, and recovery from lost work."""
from __future__ import annotations

import os
import signal
import time
from datetime import datetime, timedelta

import psutil
import pytest

from conftest import audited_at, make_migration, make_workload, wait_until

pytestmark = pytest.mark.slow


def status(client, migration_id):
    return client.get(f"/api/v1/migrations/{migration_id}/status").json


@pytest.fixture
def running_migration(client, worker_processes):
    """A 3-second migration that a real worker has started copying."""
    (worker,) = worker_processes(1, MIGRATION_DURATION_SECONDS=3)
    source = make_workload(client)
    migration = make_migration(client, source["id"], selected=("C:\\", "D:\\", "E:\\"))
    assert client.post(f"/api/v1/migrations/{migration['id']}/run").status_code == 202
    # a worker process starting on a loaded machine may take seconds: this only waits for the copy to begin
    wait_until(lambda: status(client, migration["id"])["progress"]["percent"] > 0, 30, message="copy to start")
    migration["worker_pid"] = worker.pid
    return migration


def test_progress_is_persisted_at_least_every_second(client, running_migration):
    seen, deadline = [], time.monotonic() + 2.2
    while time.monotonic() < deadline:
        seen.append(status(client, running_migration["id"])["progress"]["percent"])
        time.sleep(0.05)
    # every 1 s window shows new progress, per volume and overall
    windows = [max(seen[i:i + 20]) for i in range(0, len(seen) - 20, 20)]
    assert all(b > a for a, b in zip(windows, windows[1:])), seen
    final = wait_until(lambda: (s := status(client, running_migration["id"]))["finished"] and s, 10)
    assert final["state"] == "success" and final["progress"]["percent"] == 100.0


def test_cancel_stops_a_running_migration_within_two_seconds(client, running_migration):
    url = f"/api/v1/migrations/{running_migration['id']}"
    assert client.post(f"{url}/cancel").status_code == 202
    # The promise is the server's, timed on its clock: from the cancel (its audit entry, written as it is asked)
    # to the migration's end. This test's own polls share a loaded machine, so they only wait for it.
    wait_until(lambda: status(client, running_migration["id"])["finished"], 10, message="cancel to take effect")
    body = client.get(url).json
    asked = audited_at(client, "migration.cancel", f"migration:{body['id']}")
    assert datetime.fromisoformat(body["finished_at"]) - asked < timedelta(seconds=2)
    assert body["state"] == "error" and body["error"] == "cancelled"
    assert body["target"]["target_vm"] is None and body["progress"]["percent"] < 100


def test_a_killed_worker_ends_its_migration_as_lost_and_a_retry_succeeds(app, client, running_migration,
                                                                          worker_processes):
    from webapp.extensions import db
    from webapp.migrations import reaper, services
    from webapp.models import MigrationRow

    worker = psutil.Process(running_migration["worker_pid"])
    for proc in [worker, *worker.children(recursive=True)]:  # the worker and any work horse die
        proc.kill()
    with app.app_context():
        later = services.utcnow() + timedelta(seconds=app.config["MIGRATION_STALE_SECONDS"] + 1)
        assert reaper.reap(now=later)["lost"] == 1
        assert db.session.get(MigrationRow, running_migration["id"]).state == "error"
    body = client.get(f"/api/v1/migrations/{running_migration['id']}").json
    assert body["error"] == "worker lost" and body["target"]["target_vm"] is None
    worker_processes(1, MIGRATION_DURATION_SECONDS=0)
    assert client.post(f"/api/v1/migrations/{running_migration['id']}/run").status_code == 202
    assert wait_until(lambda: status(client, running_migration["id"])["finished"], 10)
    assert status(client, running_migration["id"])["state"] == "success"


def test_a_job_lost_with_redis_is_queued_again_by_the_maintenance_loop(app, client, redis_server, worker_processes):
    source = make_workload(client)
    migration = make_migration(client, source["id"])
    client.post(f"/api/v1/migrations/{migration['id']}/run")
    redis_server.stop()  # Redis restarts empty: the queued job is gone, the record is not
    redis_server.start()
    before = client.get(f"/api/v1/migrations/{migration['id']}").json
    assert before["state"] == "running", before
    worker_processes(1, MIGRATION_STALE_SECONDS=2)
    final = wait_until(lambda: (s := status(client, migration["id"]))["finished"] and s, 15,
                       message="the maintenance loop to queue the migration again")
    assert final["state"] == "success"


def test_run_while_redis_is_down_is_accepted_and_delivered_later(app, client, redis_server, worker_processes):
    source = make_workload(client)
    migration = make_migration(client, source["id"])
    redis_server.stop()
    try:
        response = client.post(f"/api/v1/migrations/{migration['id']}/run")
        assert response.status_code == 202 and response.json["state"] == "running"
    finally:
        redis_server.start()
    worker_processes(1, MIGRATION_STALE_SECONDS=2)
    final = wait_until(lambda: (s := status(client, migration["id"]))["finished"] and s, 15)
    assert final["state"] == "success"


def test_forking_workers_run_migrations_too(client, worker_processes):
    worker_processes(2, WORKER_FORK=1)
    sources = [make_workload(client, ip=f"10.0.1.{n}") for n in range(4)]  # one each: a source runs one at a time
    ids = [make_migration(client, source["id"])["id"] for source in sources]
    for migration_id in ids:
        assert client.post(f"/api/v1/migrations/{migration_id}/run").status_code == 202
    for migration_id in ids:
        final = wait_until(lambda i=migration_id: (s := status(client, i))["finished"] and s, 15)
        assert final["state"] == "success"
