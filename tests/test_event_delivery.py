"""Events delivered by real worker processes: the log line, the sweeper after Redis was down, the signed webhook,
its retries, no resend of a processed event, and no loss when a worker dies mid-delivery. Then the app's own
notifications (a test run or a migration ended), run by the in-process ``work`` fixture."""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest
import redis
from rq import Queue

from conftest import ADMIN, make_migration, make_workload, start_workers, user_client, wait_until

pytestmark = pytest.mark.slow

SECRET = "hook-s3cret"
FAST = {"MAINTENANCE_INTERVAL_SECONDS": 0.2, "EVENT_SWEEP_SECONDS": 1}


def post_event(client, user_id="alice", description="Cutover of DB-01 starts at 22:00") -> dict:
    response = client.post("/api/v1/events", json={"user_id": user_id, "description": description})
    assert response.status_code == 201, response.json
    return response.json


def event(client, event_id) -> dict:
    return client.get(f"/api/v1/events/{event_id}").json


def settled(client, event_id):
    body = event(client, event_id)
    return body if body["status"] != "pending" else None


def log_lines(config) -> list[str]:
    path = Path(config["DATA_DIR"]) / "notifications.log"
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def line_for(body: dict) -> str:
    return f"Event {body['id']} has been sent to {body['user_id']}: {body['description']}"


def kill_tree(pid: int) -> None:
    worker = psutil.Process(pid)
    for proc in [worker, *worker.children(recursive=True)]:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    worker.wait(5)


class Receiver:
    """A webhook receiver on 127.0.0.1: records every POST; answers ``status``, after ``delays`` (one per hit)."""

    def __init__(self, status: int = 200, delays=()):
        self.status, self.delays, self.hits, self.lock = status, list(delays), [], threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.hits.append({"headers": dict(self.headers), "body": body})
                    delay = receiver.delays.pop(0) if receiver.delays else 0
                time.sleep(delay)
                try:
                    self.send_response(receiver.status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the caller died while we slept
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/cutover"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def env(self) -> dict:
        return {"NOTIFY_WEBHOOK_URL": self.url, "NOTIFY_WEBHOOK_SECRET": SECRET}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(**kwargs) -> Receiver:
        made.append(Receiver(**kwargs))
        return made[-1]

    yield make
    for r in made:
        r.close()


def test_an_event_is_delivered_within_two_seconds_with_exactly_one_log_line(config, client, worker_processes):
    start_workers(config, worker_processes)
    start_workers(config, worker_processes, WORKER_FORK=1)  # one runs jobs in-process, one in work horses
    started = time.monotonic()
    created = post_event(client)
    done = wait_until(lambda: settled(client, created["id"]), 2.0, message="the event to be processed")
    assert time.monotonic() - started < 2.0
    assert done["status"] == "processed", done
    assert done["attempts"] == 1 and done["last_error"] is None and done["processed_at"] >= done["created_at"]
    assert {k: v for k, v in done.items() if k not in ("status", "attempts", "processed_at")} == \
        {k: v for k, v in created.items() if k not in ("status", "attempts", "processed_at")}
    assert log_lines(config) == [
        f"Event {created['id']} has been sent to alice: Cutover of DB-01 starts at 22:00"]
    more = [post_event(client, user_id=f"user{i}", description=f"message {i}") for i in range(6)]
    for body in more:  # both workers take some: each event is logged once
        assert wait_until(lambda b=body: settled(client, b["id"]), 5)["status"] == "processed"
    assert sorted(log_lines(config)) == sorted(line_for(b) for b in [created, *more])


def test_an_event_posted_while_redis_is_down_is_delivered_by_the_sweeper(config, client, redis_server,
                                                                        worker_processes):
    redis_server.stop()
    try:
        response = client.post("/api/v1/events", json={"user_id": "bob", "description": "recorded without Redis"})
        assert response.status_code == 201, response.json
        created = response.json
        assert created["status"] == "pending"
    finally:
        redis_server.start()  # it comes back empty: no job exists for the event, only the record
    assert event(client, created["id"])["status"] == "pending"
    assert len(Queue("default", connection=redis.Redis.from_url(config["REDIS_URL"]))) == 0
    start_workers(config, worker_processes, **FAST)
    done = wait_until(lambda: settled(client, created["id"]), 10, message="the sweeper to queue the event")
    assert done["status"] == "processed" and done["attempts"] == 1
    assert log_lines(config) == [line_for(created)]


def test_the_webhook_receives_the_event_signed_with_hmac_sha256_once(config, client, worker_processes, receiver):
    hook = receiver()
    start_workers(config, worker_processes, **hook.env())
    created = post_event(client, user_id="carol", description="Ünïcode ✓ and \"quotes\"")
    done = wait_until(lambda: settled(client, created["id"]), 3)
    assert done["status"] == "processed"
    (hit,) = hook.hits
    expected = "sha256=" + hmac.new(SECRET.encode(), hit["body"], hashlib.sha256).hexdigest()
    assert hit["headers"]["X-Cutover-Signature"] == expected
    assert hit["headers"]["Content-Type"].startswith("application/json")
    assert json.loads(hit["body"]) == created  # the event, as it was when it was sent
    assert log_lines(config) == [line_for(created)]
    wrong = "sha256=" + hmac.new(b"another secret", hit["body"], hashlib.sha256).hexdigest()
    assert hit["headers"]["X-Cutover-Signature"] != wrong
    # a processed event queued again by hand is not sent again, on any channel
    queue = Queue("default", connection=redis.Redis.from_url(config["REDIS_URL"]))
    jobs = [queue.enqueue("webapp.jobs.send_notification", created["id"]) for _ in range(2)]
    for job in jobs:
        wait_until(lambda j=job: j.get_status(refresh=True) in ("finished", "failed"), 5, message="the job to run")
        assert job.get_status() == "finished" and job.return_value() == "skipped"
    assert log_lines(config) == [line_for(created)]
    assert len(hook.hits) == 1
    assert event(client, created["id"]) == done


def test_a_failing_webhook_is_tried_three_times_then_the_event_is_failed(config, client, worker_processes,
                                                                          receiver):
    hook = receiver(status=500)
    # two workers and a sweeper that finds the event pending while the first worker still retries: the job it
    # queues again must not make the second worker send it too
    start_workers(config, worker_processes, 2, **hook.env(), **FAST)
    created = post_event(client)
    started = time.monotonic()
    done = wait_until(lambda: settled(client, created["id"]), 6, message="the retries to end")
    assert time.monotonic() - started >= 1.4  # growing delays between the attempts: 0.5 s, then 1 s
    assert done["status"] == "failed" and done["processed_at"] is None and done["attempts"] == 1
    assert "500" in done["last_error"] and "3 attempts" in done["last_error"]
    time.sleep(0.3)
    assert len(hook.hits) == 3
    assert log_lines(config) == []  # not "sent" when it was not
    # failed → pending queues it again; this time the receiver takes it
    hook.status = 200
    response = client.patch(f"/api/v1/events/{created['id']}", json={"status": "pending"})
    assert response.status_code == 200 and response.json["last_error"] is None
    again = wait_until(lambda: settled(client, created["id"]), 3)
    assert again["status"] == "processed" and again["last_error"] is None and again["attempts"] == 2
    assert len(hook.hits) == 4
    assert log_lines(config) == [line_for(created)]


def test_a_slow_webhook_blocks_neither_the_app_nor_sends_twice(config, client, worker_processes, receiver):
    hook = receiver(delays=[1.8])  # longer than EVENT_SWEEP_SECONDS: the sweeper queues it again meanwhile
    start_workers(config, worker_processes, 2, **hook.env(), **FAST)
    created = post_event(client, user_id="slow")
    wait_until(lambda: hook.hits, 3, message="the webhook call")
    started = time.monotonic()  # the worker is waiting for the receiver: the app works as usual meanwhile
    assert client.get("/api/v1/events").json["total"] == 1
    other = post_event(client, user_id="other")
    assert client.patch(f"/api/v1/events/{other['id']}", json={"description": "edited"}).status_code == 200
    assert time.monotonic() - started < 1.0
    done = wait_until(lambda: settled(client, created["id"]), 15)
    assert done["status"] == "processed"
    assert wait_until(lambda: settled(client, other["id"]), 15)["status"] == "processed"
    time.sleep(0.5)  # nothing more is sent
    assert len([h for h in hook.hits if json.loads(h["body"])["id"] == created["id"]]) == 1
    assert log_lines(config).count(line_for(created)) == 1 and len(log_lines(config)) == 2


@pytest.mark.parametrize("url, reason", [("http://127.0.0.1:1/refused", "refused"), ("not a url", "unknown url"),
                                         ("http://[::1/broken", "")])
def test_an_unreachable_or_malformed_webhook_url_fails_the_event_with_the_reason(app, client, work, monkeypatch,
                                                                              url, reason):
    from webapp.events import channels

    monkeypatch.setattr(channels.post_webhook, "__defaults__", (lambda seconds: None,))  # no back-off here
    app.config.update(NOTIFY_WEBHOOK_URL=url, NOTIFY_WEBHOOK_SECRET=SECRET)
    created = post_event(client)
    work()
    done = event(client, created["id"])
    assert done["status"] == "failed" and "3 attempts" in done["last_error"]
    assert reason in done["last_error"].lower()


def test_a_worker_killed_while_sending_loses_nothing(config, client, worker_processes, receiver):
    hook = receiver(delays=[3])  # the first delivery hangs in the webhook for 3 s
    (doomed,) = start_workers(config, worker_processes, **hook.env(), MAINTENANCE_INTERVAL_SECONDS=0.2,
                              EVENT_SWEEP_SECONDS=60)
    created = post_event(client, user_id="erin", description="survives a dead worker")
    wait_until(lambda: hook.hits, 3, message="the worker to start sending")
    kill_tree(doomed.pid)
    assert event(client, created["id"])["status"] == "pending"
    assert log_lines(config) == []
    start_workers(config, worker_processes, **hook.env(), **FAST)  # another host, whose sweeper finds it
    done = wait_until(lambda: settled(client, created["id"]), 10, message="the sweeper to deliver it again")
    assert done["status"] == "processed" and done["last_error"] is None
    assert len(hook.hits) >= 2  # at least once: the dead worker's attempt, then the delivery
    assert log_lines(config) == [line_for(created)]
    inbox = client.get("/inbox?user_id=erin").get_data(as_text=True)
    assert inbox.count("survives a dead worker") == 1


# --- the app notifies people itself (in-process worker) -------------------------------------------------

def events_of(client, user_id) -> list[dict]:
    return client.get(f"/api/v1/events?user_id={user_id}").json["items"]


def test_a_finished_test_run_notifies_its_user(config, client, work):
    state = "failed"
    qa_lead = user_client(client.application, "qa-lead")
    response = qa_lead.post("/api/v1/runs", json={"environment_id": 3, "test_files": ["sample_tests/test_failing.py"]})
    assert response.status_code == 201, response.json
    assert response.json["username"] == "qa-lead"
    run_id = response.json["id"]
    assert events_of(client, "qa-lead") == []  # nothing to say before it ends
    work()
    assert client.get(f"/api/v1/runs/{run_id}").json["state"] == state
    (notice,) = events_of(client, "qa-lead")
    assert notice["source"] == "run" and notice["link"] == f"/runs/{run_id}"
    assert notice["status"] == "processed"
    assert f"#{run_id}" in notice["description"] and state in notice["description"]
    assert log_lines(config) == [line_for(notice)]
    assert client.get(notice["link"]).status_code == 200
    inbox = qa_lead.get("/inbox").get_data(as_text=True)  # the user's own inbox
    assert f'href="{notice["link"]}"' in inbox and f"#{run_id}" in inbox


def test_a_run_cancelled_before_it_started_notifies_its_user_too(config, client, work):
    waiter = user_client(client.application, "waiter")
    run = waiter.post("/api/v1/runs", json={"environment_id": 4, "test_files": ["sample_tests/test_passing.py"]}).json
    assert client.post(f"/api/v1/runs/{run['id']}/cancel").status_code == 202
    (notice,) = events_of(client, "waiter")  # recorded with the final state, in the same transaction
    assert notice["source"] == "run" and notice["link"] == f"/runs/{run['id']}"
    assert "cancelled" in notice["description"]
    work()
    assert client.get(f"/api/v1/runs/{run['id']}").json["state"] == "cancelled"
    assert event(client, notice["id"])["status"] == "processed"
    assert log_lines(config) == [line_for(notice)]


def test_a_successful_migration_notifies_who_requested_it(config, client, work):
    migration = make_migration(client, make_workload(client)["id"])
    dana = user_client(client.application, "dana")
    response = dana.post(f"/api/v1/migrations/{migration['id']}/run", json={"requested_by": "dana"})
    assert response.status_code == 202
    assert events_of(client, "dana") == []
    work()
    assert client.get(f"/api/v1/migrations/{migration['id']}").json["state"] == "success"
    (notice,) = events_of(client, "dana")
    assert notice["source"] == "migration" and notice["link"] == f"/migrations/{migration['id']}"
    assert notice["status"] == "processed" and "success" in notice["description"]
    assert log_lines(config) == [line_for(notice)]
    assert client.get(notice["link"]).status_code == 200


def test_a_migration_refused_for_its_missing_system_volume_notifies_too(config, client, work):
    migration = make_migration(client, make_workload(client)["id"], selected=("D:\\",))
    dana = user_client(client.application, "dana")
    response = dana.post(f"/api/v1/migrations/{migration['id']}/run")  # requested_by left out: dana
    assert response.status_code == 422
    (pending,) = events_of(client, "dana")  # recorded with the refusal, delivered by a worker
    assert pending["status"] == "pending" and pending["source"] == "migration"
    work()
    (notice,) = events_of(client, "dana")
    assert notice["status"] == "processed" and notice["link"] == f"/migrations/{migration['id']}"
    assert "error" in notice["description"] and "C:\\" in notice["description"]
    assert log_lines(config) == [line_for(notice)]


def test_a_migration_run_without_requested_by_notifies_the_caller(client, work):
    """requested_by is always the account that pressed Run: left out, it is the caller, who is told."""
    migration = make_migration(client, make_workload(client)["id"])
    response = client.post(f"/api/v1/migrations/{migration['id']}/run")
    assert response.status_code == 202 and response.json["requested_by"] == ADMIN
    work()
    assert client.get(f"/api/v1/migrations/{migration['id']}").json["state"] == "success"
    assert client.get("/api/v1/events").json["total"] == 1
    (notice,) = events_of(client, ADMIN)
    assert notice["source"] == "migration" and notice["link"] == f"/migrations/{migration['id']}"
