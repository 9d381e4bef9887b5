"""The events API, status code by status code: a table of cases (tests/cases/events.json) run by one test,
plus a few ordinary tests for ordering, filters and what happens around the request."""
from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from test_api_workloads import error_code

CASES = json.loads((Path(__file__).parent / "cases" / "events.json").read_text(encoding="utf-8"))
EVENT_KEYS = {"id", "user_id", "description", "status", "source", "link", "attempts", "last_error", "created_at",
              "processed_at"}
DRAIN = "webapp.events.jobs.deliver_pending"  # the job function itself, by its dotted path
DRAIN_FLAG = "cutover:event-drain:waiting"


# --- the case table's small language ------------------------------------------------------------------

def expand(value, ids: list[str]):
    """``{"repeat": [s, n]}`` → s * n; ``{id}`` / ``{id0}``, ``{id1}``… → the ids of the events set up."""
    if isinstance(value, dict):
        if set(value) == {"repeat"}:
            text, count = value["repeat"]
            return text * count
        return {k: expand(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, ids) for v in value]
    if isinstance(value, str) and ids:
        value = re.sub(r"\{id(\d*)\}", lambda m: ids[int(m.group(1))] if m.group(1) else ids[-1], value)
    return value


def matches(actual, expected, where: str = "body") -> None:
    """``expected`` holds within ``actual``: dicts by the keys given, lists whole, placeholders by shape."""
    if expected == "<any>":
        return
    if expected == "<uuid>":
        assert isinstance(actual, str) and uuid.UUID(actual).version == 4 and str(uuid.UUID(actual)) == actual, \
            f"{where}: {actual!r} is not a uuid4"
        return
    if expected == "<iso8601>":
        assert isinstance(actual, str), f"{where}: {actual!r} is not a timestamp"
        assert datetime.fromisoformat(actual).utcoffset() is not None, f"{where}: {actual!r} has no time zone"
        return
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not an object"
        for key, value in expected.items():
            assert key in actual, f"{where}.{key} is missing from {actual!r}"
            matches(actual[key], value, f"{where}.{key}")
        return
    if isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{where}: {actual!r} != {expected!r}"
        for index, (a, e) in enumerate(zip(actual, expected)):
            matches(a, e, f"{where}.{index}")
        return
    assert actual == expected and type(actual) is type(expected), f"{where}: {actual!r} != {expected!r}"


def set_up(app, client, setup: dict) -> list[str]:
    """Create the case's events in order; move each to its status through the API; write raw columns."""
    from webapp.extensions import db
    from webapp.models import EventRow

    ids = []
    for event in setup.get("events", []):
        response = client.post("/api/v1/events", json={"user_id": event["user_id"],
                                                        "description": event["description"]})
        assert response.status_code == 201, response.json
        ids.append(response.json["id"])
        if event.get("status", "pending") != "pending":
            moved = client.patch(f"/api/v1/events/{ids[-1]}", json={"status": event["status"]})
            assert moved.status_code == 200, moved.json
        if event.get("row"):
            with app.app_context():
                row = db.session.get(EventRow, ids[-1])
                for name, value in event["row"].items():
                    setattr(row, name, value)
                db.session.commit()
    return ids


def queued_for(app) -> list[tuple]:
    """The drain jobs waiting (they take no arguments: each delivers every pending event)."""
    queue = app.extensions["queues"]["default"]
    return [tuple(job.args) for job in queue.jobs if job.func_name == DRAIN]


def empty_queue(app) -> None:
    """Drop the queued jobs and the flag that says a drain job waits (as Redis losing them would)."""
    app.extensions["queues"]["default"].empty()
    app.extensions["redis"].delete(DRAIN_FLAG)


def send(client, request: dict, ids: list[str]):
    method, path = request["method"].lower(), expand(request["path"], ids)
    if "json" in request:
        return getattr(client, method)(path, json=expand(request["json"], ids))
    if "body" in request:
        return getattr(client, method)(path, data=expand(request["body"], ids).encode(),
                                       content_type=request.get("content_type", "application/json"))
    return getattr(client, method)(path)


def check_shapes(body) -> None:
    """Every event in an answer has exactly the documented fields."""
    if isinstance(body, dict) and "items" in body:
        assert set(body) == {"items", "total", "page", "per_page"}
        for item in body["items"]:
            assert set(item) == EVENT_KEYS
    elif isinstance(body, dict) and "error" not in body:
        assert set(body) == EVENT_KEYS


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(app, client, as_role, case):
    """Set up and read back as the admin; send the request as the case's role ("as"), else as the admin."""
    ids = set_up(app, client, case.get("setup", {}))
    empty_queue(app)  # count only the jobs the request itself queues
    before = client.get(f"/api/v1/events/{ids[-1]}").json if ids else None
    response = send(as_role(case["as"]) if "as" in case else client, case["request"], ids)
    expect = case["expect"]

    assert response.status_code == expect["status"], response.get_data(as_text=True)[:500]
    if response.status_code >= 400:
        assert error_code(response) == expect["error_code"]
        if "fields" in expect:
            assert set(response.json["error"]["fields"]) == set(expect["fields"]), response.json
    else:
        assert "error_code" not in expect
        check_shapes(response.json)
    if "body" in expect:
        matches(response.json, expand(expect["body"], ids))
    if response.status_code == 201:
        assert response.headers["Location"].endswith(f"/api/v1/events/{response.json['id']}")
        assert client.get(response.headers["Location"]).json == response.json
    if "stored" in expect:
        assert client.get("/api/v1/events").json["total"] == expect["stored"] + len(ids)
    if "queued" in expect:
        queued = queued_for(app)
        assert len(queued) == expect["queued"], queued
        assert all(args == () for args in queued), queued
    if expect.get("unchanged"):
        assert client.get(f"/api/v1/events/{ids[-1]}").json == before
    if "after" in expect:
        matches(client.get(f"/api/v1/events/{ids[-1]}").json, expand(expect["after"], ids), "after")


def test_every_rule_has_cases():
    """The table keeps covering every status code and every from → to pair."""
    statuses = {c["expect"]["status"] for c in CASES}
    assert statuses == {200, 201, 400, 403, 404, 405, 409, 415, 422}
    roles = {c.get("as") for c in CASES}
    assert roles == {None, "operator", "viewer"}
    names = " ".join(c["name"] for c in CASES)
    for pair in ("pending_to_processed", "pending_to_failed", "failed_to_pending", "processed_to_pending",
                 "processed_to_failed", "failed_to_processed", "pending_to_pending", "processed_to_processed",
                 "failed_to_failed"):
        assert f"transition_{pair}" in names
    for edge in ("1_char", "128_char", "129_char", "2000_char", "2001_char"):
        assert edge in names


# --- ordinary tests -----------------------------------------------------------------------------------

def create(client, user_id="alice", description="hello") -> dict:
    response = client.post("/api/v1/events", json={"user_id": user_id, "description": description})
    assert response.status_code == 201, response.json
    return response.json


def test_the_list_is_newest_first_across_pages(client):
    made = [create(client, description=f"event {i}")["id"] for i in range(7)]
    seen = []
    for page in (1, 2, 3):
        body = client.get(f"/api/v1/events?per_page=3&page={page}").json
        assert body["total"] == 7 and body["page"] == page and body["per_page"] == 3
        seen += [e["id"] for e in body["items"]]
    assert seen == made[::-1]
    stamps = [e["created_at"] for e in client.get("/api/v1/events").json["items"]]
    assert stamps == sorted(stamps, reverse=True)


def test_filters_combine_with_paging_and_each_other(client):
    for i in range(5):
        event = create(client, user_id="alice" if i % 2 == 0 else "bob", description=f"n{i}")
        if i in (0, 3, 4):
            assert client.patch(f"/api/v1/events/{event['id']}", json={"status": "failed"}).status_code == 200
    failed = client.get("/api/v1/events?status=failed").json
    assert [e["description"] for e in failed["items"]] == ["n4", "n3", "n0"]
    alice_failed = client.get("/api/v1/events?status=failed&user_id=alice&per_page=1&page=2").json
    assert alice_failed["total"] == 2 and [e["description"] for e in alice_failed["items"]] == ["n0"]
    assert client.get("/api/v1/events?user_id=bob&status=pending").json["total"] == 1
    assert client.get("/api/v1/events?user_id=ALICE").json["total"] == 0  # user ids are matched exactly
    assert client.get("/api/v1/events?status=&user_id=").json["total"] == 5  # empty filters are no filters


def test_put_of_the_event_as_read_back_with_a_new_status(client):
    event = create(client)
    response = client.put(f"/api/v1/events/{event['id']}", json={**event, "status": "processed"})
    assert response.status_code == 200, response.json
    assert response.json["status"] == "processed" and response.json["processed_at"]
    assert {k: v for k, v in response.json.items() if k not in ("status", "processed_at")} == \
        {k: v for k, v in event.items() if k not in ("status", "processed_at")}


def test_failed_then_pending_then_processed_by_hand(client):
    event = create(client)
    url = f"/api/v1/events/{event['id']}"
    assert client.patch(url, json={"status": "failed"}).json["status"] == "failed"
    assert client.patch(url, json={"status": "pending"}).json["status"] == "pending"
    assert client.patch(url, json={"description": "edited again"}).status_code == 200
    done = client.patch(url, json={"status": "processed"}).json
    assert done["status"] == "processed" and done["description"] == "edited again"
    for body in ({"status": "pending"}, {"status": "failed"}, {"description": "late"}):
        response = client.patch(url, json=body)
        assert response.status_code == 409 and error_code(response) == "invalid_transition"
    assert client.get(url).json == done


def test_the_record_is_committed_before_it_is_queued(app, client, monkeypatch):
    """A worker may take the job the instant it is queued: the row must already be visible to others."""
    from sqlalchemy import select

    from webapp.db import make_engine
    from webapp import extensions as services  # the queues every feature enqueues through
    from webapp.models import EventRow

    seen = []
    other = make_engine(app.config["DATABASE_URL"])  # another connection, as a worker has
    real_get = services.queues.get

    class Spy:
        def enqueue(self, func, *args, **kwargs):
            with other.connect() as conn:
                seen.extend(conn.execute(select(EventRow.id, EventRow.status)).all())
            return real_get().enqueue(func, *args, **kwargs)

    monkeypatch.setattr(services.queues, "get", lambda name="default": Spy())
    try:
        event = create(client)
    finally:
        other.dispose()
    assert seen == [(event["id"], "pending")]


def test_redis_refusing_the_job_still_records_a_pending_event(app, client, monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError

    from webapp import extensions as services  # the queues every feature enqueues through

    class Down:
        def enqueue(self, *args, **kwargs):
            raise RedisConnectionError("Redis is down")

    monkeypatch.setattr(services.queues, "get", lambda name="default": Down())
    event = create(client)
    assert not app.extensions["redis"].exists(DRAIN_FLAG)  # it names no job: the next create queues one
    assert event["status"] == "pending"
    assert client.get(f"/api/v1/events/{event['id']}").json == event


def test_the_sweeper_queues_again_only_events_whose_job_is_gone(app, client):
    from datetime import timedelta

    from webapp.events import services

    event = client.post("/api/v1/events", json={"user_id": "sam", "description": "backlog"}).json
    later = services.utcnow() + timedelta(seconds=app.config["EVENT_SWEEP_SECONDS"] + 1)
    with app.app_context():
        assert services.sweep(now=later) == 0  # still waiting in the queue: a backlog, not a loss
        app.extensions["redis"].flushall()  # Redis restarted empty
        assert services.sweep(now=later) == 1
    assert client.get(f"/api/v1/events/{event['id']}").json["status"] == "pending"
    assert len(queued_for(app)) == 1  # the drain job that delivers it
