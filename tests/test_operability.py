"""Operable at scale: /readyz (database, Redis, schema, workers), /ping's version, request ids from a click
to the worker's log lines, and JSON logs."""
from __future__ import annotations

import json
import logging
import re
import time
from datetime import datetime, timedelta, timezone

import pytest
from rq import Worker
from rq.job import Job

from conftest import wait_until
from webapp import create_app, logs
from webapp.version import VERSION

READY = {"status": "ready", "checks": {"database": "ok", "redis": "ok", "schema": "ok", "workers": "ok"}}


def readyz(client):
    started = time.monotonic()
    response = client.get("/readyz")
    return response, time.monotonic() - started


# --- /readyz -----------------------------------------------------------------------------------------

@pytest.mark.slow
def test_readyz_is_ready_with_a_real_worker_running(anon_client, worker_processes):
    before, _ = readyz(anon_client)
    assert before.status_code == 503 and before.json["checks"]["workers"] == "none: no worker registered"
    worker_processes(1)
    ready = wait_until(lambda: (r := anon_client.get("/readyz")).status_code == 200 and r, timeout=30,
                       message="/readyz to see the worker")
    assert ready.json == READY and ready.is_json


def test_readyz_counts_a_registered_worker_that_heartbeats(anon_client, registered_worker):
    response, seconds = readyz(anon_client)
    assert (response.status_code, response.json) == (200, READY)
    assert seconds < 1.0


def test_readyz_without_workers_is_503_and_names_the_workers_check(anon_client):
    response, _ = readyz(anon_client)
    assert response.status_code == 503
    assert response.json == {"status": "not_ready", "checks": {
        "database": "ok", "redis": "ok", "schema": "ok", "workers": "none: no worker registered"}}


def test_a_worker_silent_for_more_than_30_s_does_not_count(app, anon_client, registered_worker):
    worker = Worker.all(connection=app.extensions["redis"])[0]
    old = (datetime.now(timezone.utc) - timedelta(seconds=31)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    app.extensions["redis"].hset(worker.key, "last_heartbeat", old)
    response, _ = readyz(anon_client)
    assert response.status_code == 503
    assert response.json["checks"]["workers"] == "stale: none of 1 worker(s) heartbeated in the last 30 s"
    registered_worker()
    assert anon_client.get("/readyz").status_code == 200


def test_readyz_with_redis_stopped_is_503_fast_and_says_redis_is_unreachable(anon_client, redis_server,
                                                                            registered_worker):
    assert anon_client.get("/readyz").status_code == 200
    redis_server.stop()  # the config fixture starts it again for the next test
    response, seconds = readyz(anon_client)
    assert response.status_code == 503 and seconds < 2.0
    checks = response.json["checks"]
    assert response.json["status"] == "not_ready"
    assert (checks["database"], checks["schema"]) == ("ok", "ok")
    assert checks["redis"] == "unreachable: ConnectionError"
    assert checks["workers"] == "unknown: Redis did not answer"


def test_readyz_with_the_schema_behind_head_is_503_and_names_both_revisions(app, anon_client, registered_worker):
    from alembic import command
    from alembic.script import ScriptDirectory

    from webapp import schema
    from webapp.db import current_revision, head_revision

    engine = app.extensions["db"].kw["bind"]
    with engine.connect() as connection:
        command.downgrade(schema.config(connection), "-1")
        connection.commit()
        behind = current_revision(connection)
    head = head_revision()
    assert behind == ScriptDirectory.from_config(schema.config()).get_revision(head).down_revision
    response, _ = readyz(anon_client)
    assert response.status_code == 503
    assert response.json["checks"] == {"database": "ok", "redis": "ok", "workers": "ok",
                                       "schema": f"not at head: at {behind}, head is {head}"}


def test_a_check_that_hangs_is_cut_off_after_about_a_second(anon_client, registered_worker, monkeypatch):
    from webapp import health

    monkeypatch.setattr(health, "database_revision", lambda engine: time.sleep(3))
    response, seconds = readyz(anon_client)
    assert response.status_code == 503 and seconds < 1.6
    assert response.json["checks"] == {"database": "timeout: no answer within 1 s", "redis": "ok", "workers": "ok",
                                       "schema": "unknown: the database did not answer"}


def test_a_check_that_fails_in_any_way_is_an_answer_not_a_500(anon_client, registered_worker, monkeypatch):
    from webapp import health

    def broken(connection, now=None):
        raise RuntimeError("surprise")

    monkeypatch.setattr(health, "workers_state", broken)
    response, _ = readyz(anon_client)
    assert response.status_code == 503 and response.json["checks"]["workers"] == "unreadable: RuntimeError"


def test_ping_is_liveness_only_and_says_the_version(anon_client, redis_server):
    redis_server.stop()
    response = anon_client.get("/ping")
    assert response.status_code == 200 and response.json["status"] == "ok"
    assert response.json["version"] == VERSION


def test_the_version_is_in_the_openapi_document_and_the_page_footer(client):
    assert client.get("/api/openapi.json").json["info"]["version"] == VERSION
    page = client.get("/").get_data(as_text=True)
    assert f'<footer class="site-footer">Cutover {VERSION}</footer>' in page


# --- request ids -------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["/ping", "/readyz", "/login", "/api/v1/workloads", "/no-such-page"])
def test_every_answer_carries_the_request_id_the_client_sent(anon_client, url):
    response = anon_client.get(url, headers={"X-Request-ID": "click-42.A_b"})
    assert response.headers["X-Request-ID"] == "click-42.A_b"


def test_a_request_without_an_id_gets_a_new_one_each_time(anon_client):
    first, second = (anon_client.get("/ping").headers["X-Request-ID"] for _ in range(2))
    assert re.fullmatch(r"[0-9a-f]{32}", first) and re.fullmatch(r"[0-9a-f]{32}", second) and first != second


@pytest.mark.parametrize("insane", ["", "has space", "x" * 129, "semi;colon", "ünïcode", "a/b", "<script>"])
def test_an_insane_request_id_is_replaced_by_a_new_one(anon_client, insane):
    sent = anon_client.get("/ping", headers={"X-Request-ID": insane}).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", sent), sent


def test_the_longest_sane_request_id_is_kept(anon_client):
    sane = "a" * 128
    assert anon_client.get("/ping", headers={"X-Request-ID": sane}).headers["X-Request-ID"] == sane


def test_the_request_id_goes_into_the_job_meta_and_the_workers_log_lines(app, client, work, caplog):
    response = client.post("/api/v1/events", json={"user_id": "ops", "description": "follow me"},
                           headers={"X-Request-ID": "click-to-worker-1"})
    assert response.status_code == 201
    drain = app.extensions["redis"].get("cutover:event-drain:waiting").decode()  # the drain job it queued
    job = Job.fetch(drain, connection=app.extensions["redis"])
    assert job.meta["request_id"] == "click-to-worker-1"
    with caplog.at_level(logging.INFO):
        work()
    ours = [r for r in caplog.records if getattr(r, "request_id", None) == "click-to-worker-1"]
    assert any(r.job_id == job.id and "Job OK" in r.getMessage() for r in ours), [r.getMessage() for r in ours]
    assert logs.current_request_id() is None  # nothing left behind once the job is done


def test_a_job_queued_outside_any_request_has_no_request_id(app):
    from webapp.extensions import enqueue
    from webapp.events.jobs import send_notification

    with app.app_context():
        job = enqueue(send_notification, "nope", job_id="no-request")
    assert "request_id" not in job.meta


def test_a_job_keeps_meta_given_by_its_caller(app):
    from webapp.events.jobs import send_notification
    from webapp.extensions import enqueue

    with app.test_request_context(headers={"X-Request-ID": "rid-7"}):
        app.preprocess_request()
        enqueue(send_notification, "nope", job_id="with-meta", meta={"mine": 1})
    assert Job.fetch("with-meta", connection=app.extensions["redis"]).meta == {"mine": 1, "request_id": "rid-7"}


# --- LOG_FORMAT ----------------------------------------------------------------------------------------

def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_log_format_json_makes_web_lines_json_with_the_request_id(config, capsys):
    app = create_app({**config, "LOG_FORMAT": "json"})
    try:
        capsys.readouterr()
        with app.test_request_context("/ping", headers={"X-Request-ID": "json-web-1"}):
            app.preprocess_request()
            logging.getLogger("webapp.somewhere").warning("hello %s", "there")
        lines = json_lines(capsys.readouterr().err)
    finally:
        app.extensions["db"].kw["bind"].dispose()
        logs.configure("plain")
    line = next(line for line in lines if line.get("message") == "hello there")
    assert set(line) == {"timestamp", "level", "logger", "message", "request_id"}
    assert (line["level"], line["logger"], line["request_id"]) == ("WARNING", "webapp.somewhere", "json-web-1")
    assert datetime.fromisoformat(line["timestamp"]).tzinfo is not None


def test_the_plain_format_stays_the_default(config, capsys):
    app = create_app(config)
    capsys.readouterr()
    logging.getLogger("webapp.somewhere").warning("plain words")
    err = capsys.readouterr().err
    app.extensions["db"].kw["bind"].dispose()
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING webapp.somewhere: plain words$", err, re.M), err


def test_an_unknown_log_format_is_refused_at_start(config):
    with pytest.raises(RuntimeError, match="LOG_FORMAT"):
        create_app({**config, "LOG_FORMAT": "xml"})


@pytest.mark.slow
def test_a_worker_with_log_format_json_logs_the_click_s_request_id_and_the_job_id(app, client, worker_processes,
                                                                                  tmp_path):
    log = tmp_path / "worker.log"
    worker_processes(1, log=log, LOG_FORMAT="json")
    response = client.post("/api/v1/events", json={"user_id": "ops", "description": "follow me"},
                           headers={"X-Request-ID": "click-to-process-1"})
    assert response.status_code == 201

    def done():
        lines = json_lines(log.read_text())  # every line is JSON
        return [line for line in lines if line.get("request_id") == "click-to-process-1"  # the drain job it queued
                and str(line.get("job_id")).startswith("event-drain-") and "Job OK" in line["message"]]

    (line,) = wait_until(done, timeout=30, message="the worker's JSON line for the job")
    assert {"timestamp", "level", "logger", "message"} <= set(line) and line["logger"] == "rq.worker"
    started = json_lines(log.read_text())[0]
    assert "job_id" not in started and started["request_id"] is None  # not every line is a job's


def test_the_worker_heartbeats_every_few_seconds_while_registered_and_never_before(app):
    """RQ heartbeats an idle worker only every 405 s and a busy SimpleWorker not at all until its job ends:
    the worker's heartbeat thread keeps /readyz's 30 s window true."""
    from webapp.workers import Heartbeat

    connection = app.extensions["redis"]
    worker = Worker(["default"], connection=connection)
    beat = Heartbeat(worker, interval=0.05)
    beat.start()
    try:
        time.sleep(0.2)
        assert not connection.exists(worker.key)  # not born yet: a heartbeat would block its registration
        worker.register_birth()
        old = (datetime.now(timezone.utc) - timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        connection.hset(worker.key, "last_heartbeat", old)
        wait_until(lambda: Worker.find_by_key(worker.key, connection=connection).last_heartbeat
                   > datetime.now(timezone.utc) - timedelta(seconds=5), timeout=5, message="a new heartbeat")
    finally:
        beat.stopped.set()
        beat.join(2)
        worker.register_death()
