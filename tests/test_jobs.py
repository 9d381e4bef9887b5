"""The worker side's one way in and out: ``extensions.enqueue`` (the job function itself, ids only),
``job_status``/``job_statuses`` and ``cancel_job`` (which survive a vanished job and a stopped Redis), and the old
``webapp.jobs`` names that jobs queued by the previous release still carry."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from redis.exceptions import RedisError
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from conftest import make_migration, make_workload

from webapp import jobs as old_names
from webapp.events.jobs import deliver_pending, send_notification
from webapp.extensions import cancel_job, enqueue, job_status, job_statuses
from webapp.migrations.jobs import run_migration
from webapp.runs.jobs import run_tests

ROOT = Path(__file__).resolve().parent.parent
NEW_JOBS = [run_migration, run_tests, send_notification, deliver_pending]


def dotted(fn) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


@pytest.mark.parametrize("fn, ident", [(run_migration, 41), (run_tests, 42), (send_notification, "an-event-id")],
                         ids=lambda v: v.__name__ if callable(v) else str(v))
def test_an_enqueued_job_is_found_by_its_function(app, fn, ident):
    with app.app_context():
        job = enqueue(fn, ident, job_id=f"probe-{fn.__name__}", job_timeout=30, result_ttl=60)
        assert job_status(job.id) == JobStatus.QUEUED
    queue = app.extensions["queues"]["default"]
    (found,) = [j for j in queue.jobs if j.func == fn]
    assert found.id == f"probe-{fn.__name__}" and found.args == (ident,) and found.kwargs == {}
    assert found.func_name == dotted(fn) and found.func_name.startswith(("webapp.migrations.jobs.",
                                                                         "webapp.runs.jobs.", "webapp.events.jobs."))
    assert found.timeout == 30 and found.result_ttl == 60


@pytest.mark.parametrize("argument", [{"password": "secret"}, ["C:\\"], None, True, 1.5])
def test_a_job_takes_ids_only(app, argument):
    with app.app_context(), pytest.raises(TypeError, match="ids only"):
        enqueue(run_migration, argument, job_id="never")
    assert app.extensions["queues"]["default"].count == 0


def test_the_features_queue_their_jobs_by_function_with_the_same_ids_and_queue(app, client, work):
    source = make_workload(client)
    migration = make_migration(client, source["id"])
    assert client.post(f"/api/v1/migrations/{migration['id']}/run").status_code == 202
    event = client.post("/api/v1/events", json={"user_id": "sam", "description": "hello"}).json
    queue = app.extensions["queues"]["default"]
    jobs = {j.func_name: j for j in queue.jobs}
    assert set(jobs) == {dotted(run_migration), dotted(deliver_pending)}
    assert re.fullmatch(rf"migration-{migration['id']}-[0-9a-f]{{12}}", jobs[dotted(run_migration)].id)
    assert jobs[dotted(run_migration)].args == (migration["id"],)
    assert re.fullmatch(r"event-drain-[0-9a-f]{32}", jobs[dotted(deliver_pending)].id)  # it delivers every
    assert jobs[dotted(deliver_pending)].args == ()  # pending event, this one included
    work()
    assert client.get(f"/api/v1/events/{event['id']}").json["status"] == "processed"
    assert {j.origin for j in jobs.values()} == {"default"}


def test_job_status_reads_none_for_a_job_rq_does_not_have(app):
    redis = app.extensions["redis"]
    with app.app_context():
        enqueue(run_migration, 1, job_id="present")
        redis.hset("rq:job:half-gone", "status", "queued")  # a hash without its data: RQ raises NoSuchJobError
        with pytest.raises(NoSuchJobError):
            Job.fetch("half-gone", connection=redis)
        assert job_status("never-queued") is None
        assert job_status("half-gone") is None
        assert job_status(None) is None and job_status("") is None
        assert job_statuses(["present", "never-queued", None, "half-gone", "present"]) == [
            JobStatus.QUEUED, None, None, None, JobStatus.QUEUED]
        assert job_statuses([]) == []


def test_cancel_job_takes_a_job_out_once_and_survives_a_missing_one(app):
    queue = app.extensions["queues"]["default"]
    with app.app_context():
        enqueue(run_migration, 1, job_id="to-cancel")
        assert cancel_job("to-cancel") is True
        assert job_status("to-cancel") == JobStatus.CANCELED and queue.count == 0
        assert cancel_job("to-cancel") is False  # already cancelled (RQ: InvalidJobOperation)
        assert cancel_job("never-queued") is False
        assert cancel_job(None) is False


def test_the_job_helpers_survive_a_stopped_redis(app, redis_server):
    with app.app_context():
        enqueue(run_migration, 1, job_id="queued-before")
        redis_server.stop()
        assert job_status("queued-before") is None
        assert job_statuses(["queued-before", None]) == [None, None]
        assert cancel_job("queued-before") is False
        with pytest.raises(RedisError):  # the caller decides what stays safe (each one logs and recovers later)
            enqueue(run_migration, 1, job_id="queued-during")
    redis_server.start()


@pytest.mark.parametrize("old, new", [("run_migration", run_migration), ("run_tests", run_tests),
                                      ("send_notification", send_notification)])
def test_jobs_queued_by_the_previous_release_still_find_their_function(app, work, old, new):
    assert getattr(old_names, old) is new
    queue = Queue("default", connection=app.extensions["redis"])
    job = queue.enqueue(f"webapp.jobs.{old}", 0 if old != "send_notification" else "no-such-event")
    assert Job.fetch(job.id, connection=app.extensions["redis"]).func is new
    work()
    assert job.get_status(refresh=True) == JobStatus.FINISHED and job.return_value() == "skipped"


def test_only_the_helpers_talk_to_rq_about_jobs():
    """No hand-written ``Job.fetch`` or ``queue.enqueue`` outside ``extensions``; no job named by a string."""
    offenders = []
    for path in sorted((ROOT / "webapp").rglob("*.py")):
        if path.name == "extensions.py" and path.parent.name == "webapp":
            continue
        text = path.read_text(encoding="utf-8")
        for pattern in (r"Job\.fetch", r"\.enqueue\(", r"fetch_many", r"[\"']webapp\.jobs\."):
            if re.search(pattern, text):
                offenders.append(f"{path.relative_to(ROOT)}: {pattern}")
    assert offenders == []
