"""The migrations API: every documented status code, and runs through a real RQ worker."""
from __future__ import annotations

import pytest

from conftest import make_migration, make_workload
from test_api_workloads import error_code


@pytest.fixture
def source(client):
    return make_workload(client)


def test_create_returns_201_with_the_documented_shape(client, source):
    response = client.post("/api/v1/migrations", json={
        "source_id": source["id"], "selected_mount_points": ["c:", "E:\\"],
        "target": {"cloud_type": "azure", "cloud_credentials": {"username": "sp", "password": "pw", "domain": "t1"}}})
    assert response.status_code == 201
    body = response.json
    assert response.headers["Location"].endswith(f"/api/v1/migrations/{body['id']}")
    assert body["selected_mount_points"] == ["C:\\", "E:\\"]
    assert body["target"] == {"cloud_type": "azure", "target_vm": None,
                              "cloud_credentials": {"username": "sp", "domain": "t1", "password_set": True}}
    assert body["state"] == "not_started" and body["error"] is None
    assert body["progress"] == {"percent": 0.0, "mount_points": [
        {"name": "C:\\", "size": 40, "copied": 0.0}, {"name": "E:\\", "size": 60, "copied": 0.0}]}
    assert body["started_at"] is None and body["finished_at"] is None and body["created_at"]
    assert "pw" not in response.get_data(as_text=True).replace("password", "")


@pytest.mark.parametrize("change, field", [
    ({"source_id": 999}, "source_id"),
    ({"source_id": "1"}, "source_id"),
    ({"selected_mount_points": []}, "selected_mount_points"),
    ({"selected_mount_points": ["Z:\\"]}, "selected_mount_points"),
    ({"selected_mount_points": ["C:", "c:\\"]}, "selected_mount_points"),
    ({"target": {"cloud_type": "gcp", "cloud_credentials": {"username": "u", "password": "p"}}}, "target.cloud_type"),
    ({"target": {"cloud_type": "aws", "cloud_credentials": {"username": "u"}}}, "target.cloud_credentials.password"),
    ({"target": None}, "target"),
])
def test_invalid_create_is_422_and_stores_nothing(client, source, change, field):
    payload = {"source_id": source["id"], "selected_mount_points": ["C:\\"],
               "target": {"cloud_type": "aws", "cloud_credentials": {"username": "u", "password": "p"}}, **change}
    response = client.post("/api/v1/migrations", json=payload)
    assert response.status_code == 422, response.json
    assert error_code(response) == "validation_error"
    assert field in response.json["error"]["fields"]
    assert client.get("/api/v1/migrations").json["total"] == 0


def test_run_to_success_through_a_worker(client, source, work):
    migration = make_migration(client, source["id"], selected=("C:\\", "E:\\"))
    url = f"/api/v1/migrations/{migration['id']}"
    response = client.post(f"{url}/run")
    assert response.status_code == 202 and response.json["state"] == "running"
    assert client.get(f"{url}/status").json["finished"] is False
    work()
    status = client.get(f"{url}/status").json
    assert status == {"state": "success", "phase": None, "finished": True, "error": None, "progress": {"percent": 100.0, "mount_points": [
        {"name": "C:\\", "size": 40, "copied": 40.0}, {"name": "E:\\", "size": 60, "copied": 60.0}]}}
    body = client.get(url).json
    assert body["target"]["target_vm"] == {
        "ip": "10.0.0.10", "credentials": {"username": "admin", "domain": "CORP", "password_set": True},
        "storage": [{"name": "C:\\", "size": 40}, {"name": "E:\\", "size": 60}]}
    assert body["started_at"] and body["finished_at"]
    assert client.get(f"/api/v1/workloads/{source['id']}").json == source  # the source is untouched


def test_run_without_system_volume_is_422_and_the_migration_is_in_error(client, source, work):
    migration = make_migration(client, source["id"], selected=("D:\\",))
    response = client.post(f"/api/v1/migrations/{migration['id']}/run")
    assert response.status_code == 422 and error_code(response) == "system_volume_required"
    body = client.get(f"/api/v1/migrations/{migration['id']}").json
    assert body["state"] == "error" and "C:\\" in body["error"]
    work()
    assert client.get(f"/api/v1/migrations/{migration['id']}").json["target"]["target_vm"] is None


def test_run_is_409_while_running_and_after_success_but_retry_works_after_error(client, source, work):
    migration = make_migration(client, source["id"], selected=("D:\\",))
    url = f"/api/v1/migrations/{migration['id']}"
    assert client.post(f"{url}/run").status_code == 422  # → error
    assert client.patch(url, json={"selected_mount_points": ["C:\\", "D:\\"]}).status_code == 200
    assert client.post(f"{url}/run").status_code == 202  # retry from error
    running = client.post(f"{url}/run")
    assert running.status_code == 409 and error_code(running) == "invalid_state"
    work()
    done = client.post(f"{url}/run")
    assert done.status_code == 409 and error_code(done) == "invalid_state"


def test_cancel_is_409_unless_running_and_ends_a_queued_run_at_once(client, source, work):
    migration = make_migration(client, source["id"])
    url = f"/api/v1/migrations/{migration['id']}"
    not_running = client.post(f"{url}/cancel")
    assert not_running.status_code == 409 and error_code(not_running) == "invalid_state"
    client.post(f"{url}/run")
    assert client.post(f"{url}/cancel").status_code == 202
    work()  # the queued job finds the migration cancelled and does nothing
    body = client.get(url).json
    assert body["state"] == "error" and body["error"] == "cancelled" and body["target"]["target_vm"] is None


@pytest.mark.parametrize("change", [{"source_id": 2}, {"state": "success"}, {"id": 77}])
def test_fields_that_never_change_are_422_immutable_field(client, source, change):
    make_workload(client, ip="10.9.9.9")
    migration = make_migration(client, source["id"])
    response = client.patch(f"/api/v1/migrations/{migration['id']}", json=change)
    assert response.status_code == 422 and error_code(response) == "immutable_field"
    assert client.get(f"/api/v1/migrations/{migration['id']}").json == migration


def test_same_values_for_fixed_fields_are_accepted_by_put(client, source):
    migration = make_migration(client, source["id"])
    payload = {"source_id": source["id"], "state": "not_started", "selected_mount_points": ["C:\\"],
               "target": {"cloud_type": "vcloud", "cloud_credentials": {"username": "v"}}}
    response = client.put(f"/api/v1/migrations/{migration['id']}", json=payload)
    assert response.status_code == 200, response.json
    assert response.json["target"]["cloud_type"] == "vcloud"
    assert response.json["target"]["cloud_credentials"] == {"username": "v", "domain": "", "password_set": True}
    assert response.json["progress"]["mount_points"] == [{"name": "C:\\", "size": 40, "copied": 0.0}]


def test_editing_or_deleting_a_running_migration_is_409(client, source):
    migration = make_migration(client, source["id"])
    url = f"/api/v1/migrations/{migration['id']}"
    client.post(f"{url}/run")
    edit = client.patch(url, json={"selected_mount_points": ["C:\\"]})
    assert edit.status_code == 409 and error_code(edit) == "invalid_state"
    delete = client.delete(url)
    assert delete.status_code == 409 and error_code(delete) == "invalid_state"


def test_editing_after_success_is_409(client, source, work):
    migration = make_migration(client, source["id"])
    url = f"/api/v1/migrations/{migration['id']}"
    client.post(f"{url}/run")
    work()
    assert client.patch(url, json={"selected_mount_points": ["C:\\"]}).status_code == 409


def test_delete_is_204_and_frees_the_workload(client, source):
    migration = make_migration(client, source["id"])
    assert client.delete(f"/api/v1/migrations/{migration['id']}").status_code == 204
    assert client.get(f"/api/v1/migrations/{migration['id']}").status_code == 404
    assert client.delete(f"/api/v1/workloads/{source['id']}").status_code == 204


@pytest.mark.parametrize("method, path", [
    ("get", "/api/v1/migrations/42"), ("get", "/api/v1/migrations/42/status"), ("post", "/api/v1/migrations/42/run"),
    ("post", "/api/v1/migrations/42/cancel"), ("patch", "/api/v1/migrations/42"), ("delete", "/api/v1/migrations/42"),
])
def test_unknown_migration_is_404(client, method, path):
    response = getattr(client, method)(path, json={})
    assert response.status_code == 404 and error_code(response) == "not_found"


def test_list_newest_first_and_paginated(client, source):
    ids = [make_migration(client, source["id"])["id"] for _ in range(3)]
    body = client.get("/api/v1/migrations?per_page=2").json
    assert body["total"] == 3 and [m["id"] for m in body["items"]] == ids[::-1][:2]


def test_run_accepts_requested_by_and_refuses_bad_json(client, as_role, source):
    """``requested_by`` is the caller: it may be named or left out, but never another account."""
    dana = as_role("operator", "dana")
    migration = make_migration(client, source["id"])
    url = f"/api/v1/migrations/{migration['id']}/run"
    bad = client.post(url, data=b"{oops", content_type="application/json")
    assert bad.status_code == 400 and error_code(bad) == "bad_json"
    form = client.post(url, data=b"requested_by=admin", content_type="application/x-www-form-urlencoded")
    assert form.status_code == 415 and error_code(form) == "unsupported_media_type"
    for someone_else in ("dana", "nobody"):
        refused = client.post(url, json={"requested_by": someone_else})
        assert refused.status_code == 422 and error_code(refused) == "validation_error"
        assert set(refused.json["error"]["fields"]) == {"requested_by"}
    assert client.get(f"/api/v1/migrations/{migration['id']}").json["state"] == "not_started"
    response = dana.post(url, json={"requested_by": "dana"})
    assert response.status_code == 202 and response.json["requested_by"] == "dana"


@pytest.mark.parametrize("body", [None, {}, {"requested_by": None}, {"requested_by": "admin"}])
def test_run_is_requested_by_the_caller_when_not_named(client, source, body):
    migration = make_migration(client, source["id"])
    url = f"/api/v1/migrations/{migration['id']}/run"
    response = client.post(url) if body is None else client.post(url, json=body)
    assert response.status_code == 202 and response.json["requested_by"] == "admin"
    assert client.get(f"/api/v1/migrations/{migration['id']}").json["requested_by"] == "admin"


def test_a_viewer_may_read_but_not_run_a_migration(client, as_role, source):
    viewer = as_role("viewer")
    migration = make_migration(client, source["id"])
    url = f"/api/v1/migrations/{migration['id']}"
    response = viewer.post(f"{url}/run")
    assert response.status_code == 403 and error_code(response) == "forbidden"
    assert viewer.get(url).json == client.get(url).json and client.get(url).json["state"] == "not_started"
