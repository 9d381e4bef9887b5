"""The drain job (``jobs.deliver_pending``): many events per job, each still delivered at least once and never
twice: two workers draining at once, a job run again, an event another worker holds, a worker killed in the middle
of a batch, and the per-event job of earlier releases still delivering."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import redis
from rq import Queue

from conftest import wait_until
from conftest import start_workers
from test_event_delivery import FAST, kill_tree, line_for, log_lines, post_event

DRAIN = "webapp.events.jobs.deliver_pending"


def drains(app) -> list[tuple]:
    """The drain jobs waiting (they take no arguments: each delivers every pending event)."""
    return [tuple(job.args) for job in app.extensions["queues"]["default"].jobs if job.func_name == DRAIN]


def statuses(app) -> dict[str, tuple]:
    from sqlalchemy import select

    from webapp.models import EventRow, NotificationRow

    with app.app_context():
        session = app.extensions["db"]()
        try:
            inbox = {}
            for event_id in session.scalars(select(NotificationRow.event_id)):
                inbox[event_id] = inbox.get(event_id, 0) + 1
            return {r.id: (r.status, r.attempts, inbox.get(r.id, 0)) for r in session.scalars(select(EventRow))}
        finally:
            session.close()


def leases(connection) -> list[bytes]:
    return list(connection.scan_iter("cutover:event-delivery:*"))


def test_a_drain_leaves_an_event_another_worker_holds_and_delivers_it_once_released(app, client, work):
    held, free = post_event(client, user_id="held"), post_event(client, user_id="free")
    connection = app.extensions["redis"]
    key = f"cutover:event-delivery:{held['id']}"
    connection.set(key, "another-worker", px=60000)  # as another worker's lease, mid-delivery
    work()
    assert client.get(f"/api/v1/events/{held['id']}").json["status"] == "pending"
    assert log_lines(app.config) == [line_for(free)]
    connection.delete(key)  # that worker let go without delivering it (it died; its lease lapsed)
    with app.app_context():
        from webapp.events import services

        services.wake()
    work()
    done = client.get(f"/api/v1/events/{held['id']}").json
    assert done["status"] == "processed" and done["attempts"] == 1
    assert log_lines(app.config) == [line_for(free), line_for(held)]
    assert leases(connection) == []  # every lease given back


def test_a_job_of_the_previous_release_still_delivers_its_event(app, client, work):
    created = post_event(client)
    app.extensions["queues"]["default"].empty()
    app.extensions["redis"].delete("cutover:event-drain:waiting")
    job = Queue("default", connection=app.extensions["redis"]).enqueue("webapp.jobs.send_notification",
                                                                        created["id"])
    work()
    assert job.return_value() == "processed"
    assert client.get(f"/api/v1/events/{created['id']}").json["status"] == "processed"
    assert log_lines(app.config) == [line_for(created)]


def test_the_sweeper_replaces_a_drain_flag_whose_job_is_lost(app, client):
    from datetime import timedelta

    from webapp.events import services

    event = client.post("/api/v1/events", json={"user_id": "sam", "description": "flag left"}).json
    app.extensions["queues"]["default"].empty()  # the job is gone, its flag is not: creates queue nothing now
    assert client.post("/api/v1/events", json={"user_id": "sam", "description": "no job"}).status_code == 201
    assert drains(app) == []
    later = services.utcnow() + timedelta(seconds=app.config["EVENT_SWEEP_SECONDS"] + 1)
    with app.app_context():
        assert services.sweep(now=later) == 2
        assert services.sweep(now=later) == 0  # the new drain job waits
    assert drains(app) == [()]
    assert client.get(f"/api/v1/events/{event['id']}").json["status"] == "pending"


def test_one_drain_job_waits_for_many_creates_and_delivers_them_all_once(app, client, work):
    made = [client.post("/api/v1/events", json={"user_id": f"u{i}", "description": f"n{i}"}).json for i in range(5)]
    assert drains(app) == [()]  # the first create queued it; the others found it waiting
    work()
    assert sorted(log_lines(app.config)) == sorted(line_for(e) for e in made)
    for e in made:
        done = client.get(f"/api/v1/events/{e['id']}").json
        assert done["status"] == "processed" and done["attempts"] == 1
    assert not app.extensions["redis"].exists("cutover:event-drain:waiting")
    later = client.post("/api/v1/events", json={"user_id": "late", "description": "after the drain"}).json
    assert drains(app) == [()]  # the drain deleted the flag when it started: the next create queues again
    work()
    assert client.get(f"/api/v1/events/{later['id']}").json["status"] == "processed"
    assert len(log_lines(app.config)) == 6


@pytest.mark.slow
def test_two_workers_draining_at_once_send_every_event_once_and_a_job_run_again_sends_nothing(
        app, config, client, worker_processes):
    made = [post_event(client, user_id=f"user{i % 7}", description=f"message {i}") for i in range(400)]
    queue = Queue("default", connection=redis.Redis.from_url(config["REDIS_URL"]))
    for _ in range(5):  # more drain jobs than workers: they run at once, on the same pending events
        queue.enqueue(DRAIN)
    start_workers(config, worker_processes, 2)
    wait_until(lambda: all(s[0] != "pending" for s in statuses(app).values()), 30, message="every event delivered")
    assert set(statuses(app).values()) == {("processed", 1, 1)}  # once each: one attempt, one inbox entry
    assert sorted(log_lines(config)) == sorted(line_for(e) for e in made)
    again = [queue.enqueue(DRAIN), queue.enqueue("webapp.jobs.send_notification", made[0]["id"])]
    for job in again:  # a drain job and an old per-event job run again, after the fact
        wait_until(lambda j=job: j.get_status(refresh=True) in ("finished", "failed"), 10, message="the job")
    assert [j.return_value() for j in again] == [0, "skipped"]
    assert len(log_lines(config)) == len(made)
    assert leases(queue.connection) == []


@pytest.mark.slow
def test_a_worker_killed_in_the_middle_of_a_batch_loses_nothing_and_sends_nothing_twice(app, config, client,
                                                                                      worker_processes):
    made = [post_event(client, user_id="kim", description=f"batch {i}") for i in range(5)]
    connection = redis.Redis.from_url(config["REDIS_URL"])
    log = Path(config["DATA_DIR"]) / "notifications.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(log)  # the worker blocks opening it: leases taken, rows updated, not committed
    (doomed,) = start_workers(config, worker_processes, MAINTENANCE_INTERVAL_SECONDS=0.2, EVENT_SWEEP_SECONDS=60)
    try:
        wait_until(lambda: len(leases(connection)) == len(made), 10, message="the worker to lease the batch")
        time.sleep(0.2)
        kill_tree(doomed.pid)
    finally:
        log.unlink()
    assert set(statuses(app).values()) == {("pending", 0, 0)}  # its transaction died with it
    assert len(leases(connection)) == len(made)  # and its leases lapse by themselves (3 s)
    start_workers(config, worker_processes, **FAST)  # another host, whose sweeper finds them
    wait_until(lambda: all(s[0] != "pending" for s in statuses(app).values()), 15,
               message="the sweeper to have them delivered")
    assert set(statuses(app).values()) == {("processed", 1, 1)}
    assert sorted(log_lines(config)) == sorted(line_for(e) for e in made)
