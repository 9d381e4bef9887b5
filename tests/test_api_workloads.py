"""The workloads API, status code by status code (the seed's "test harness")."""
from __future__ import annotations

import pytest

from conftest import WORKLOAD, make_migration, make_workload


def error_code(response) -> str:
    assert response.is_json, response.data[:200]
    body = response.json["error"]
    assert set(body) == {"code", "message", "fields"} and body["message"]
    return body["code"]


def test_create_returns_201_with_location_and_no_password(client):
    response = client.post("/api/v1/workloads", json=WORKLOAD)
    assert response.status_code == 201
    body = response.json
    assert response.headers["Location"].endswith(f"/api/v1/workloads/{body['id']}")
    assert body["ip"] == "10.0.0.10"
    assert body["credentials"] == {"username": "admin", "domain": "CORP", "password_set": True}
    assert body["storage"] == WORKLOAD["storage"]
    assert "s3cret" not in response.get_data(as_text=True)
    assert client.get(response.headers["Location"]).json == body


def test_password_is_encrypted_at_rest(app, client):
    from webapp.extensions import db
    from webapp.models import WorkloadRow

    created = make_workload(client)
    with app.app_context():
        row = db.session.get(WorkloadRow, created["id"])
        assert "s3cret" not in row.password_enc


@pytest.mark.parametrize("payload, field, message", [
    ({**WORKLOAD, "ip": "300.1.1.1"}, "ip", "valid IPv4 or IPv6"),
    ({**WORKLOAD, "ip": None}, "ip", "valid IPv4 or IPv6"),
    ({k: v for k, v in WORKLOAD.items() if k != "ip"}, "ip", "valid IPv4 or IPv6"),
    ({**WORKLOAD, "credentials": {"username": "", "password": "x"}}, "credentials.username", "required"),
    ({**WORKLOAD, "credentials": {"username": "a"}}, "credentials.password", "required"),
    ({**WORKLOAD, "credentials": "admin"}, "credentials", "must be an object"),
    ({**WORKLOAD, "storage": [{"name": "C:\\", "size": 0}]}, "storage.0.size", "greater than 0"),
    ({**WORKLOAD, "storage": [{"name": "C:\\", "size": "10"}]}, "storage.0.size", "whole number"),
    ({**WORKLOAD, "storage": [{"name": "", "size": 1}]}, "storage.0.name", "required"),
    ({**WORKLOAD, "storage": [{"name": "c:", "size": 1}, {"name": "C:\\", "size": 2}]}, "storage.1.name", "twice"),
    ({**WORKLOAD, "storage": "C:"}, "storage", "list"),
])
def test_invalid_input_is_422_with_field_messages_and_stores_nothing(client, payload, field, message):
    response = client.post("/api/v1/workloads", json=payload)
    assert response.status_code == 422
    assert error_code(response) == "validation_error"
    assert any(message in m for m in response.json["error"]["fields"][field])
    assert client.get("/api/v1/workloads").json["total"] == 0


@pytest.mark.parametrize("body, content_type", [
    (b"{not json", "application/json"), (b"", "application/json"), (b"[1, 2]", "application/json"),
])
def test_malformed_json_is_400_bad_json(client, body, content_type):
    response = client.post("/api/v1/workloads", data=body, content_type=content_type)
    assert response.status_code == 400
    assert error_code(response) == "bad_json"


@pytest.mark.parametrize("body, content_type", [
    (b"ip=1.2.3.4", "application/x-www-form-urlencoded"), (b'{"ip": "1.2.3.4"}', "text/plain"),
])
def test_a_body_that_is_not_json_is_415_and_stores_nothing(client, body, content_type):
    response = client.post("/api/v1/workloads", data=body, content_type=content_type)
    assert response.status_code == 415
    assert error_code(response) == "unsupported_media_type"
    assert client.get("/api/v1/workloads").json["total"] == 0


def test_duplicate_ip_is_409_even_when_spelled_differently(client):
    make_workload(client, ip="fd00::1")
    response = client.post("/api/v1/workloads", json={**WORKLOAD, "ip": "fd00:0:0::0001"})
    assert response.status_code == 409
    assert error_code(response) == "duplicate_ip"
    assert client.get("/api/v1/workloads").json["total"] == 1


def test_unknown_id_is_404_and_wrong_method_is_405_as_json(client):
    assert error_code(client.get("/api/v1/workloads/999")) == "not_found"
    assert client.get("/api/v1/workloads/999").status_code == 404
    assert client.get("/api/v1/nothing-here").status_code == 404
    response = client.post("/api/v1/workloads/1")
    assert response.status_code == 405 and error_code(response) == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


@pytest.mark.parametrize("method", ["put", "patch"])
def test_update_keeps_password_when_not_sent_and_refuses_a_new_ip(client, method):
    created = make_workload(client)
    url = f"/api/v1/workloads/{created['id']}"
    changed = {"credentials": {"username": "root", "domain": ""}, "storage": [{"name": "c:", "size": 50}]}
    same_ip = getattr(client, method)(url, json={**changed, "ip": "10.0.0.10"})
    assert same_ip.status_code == 200, same_ip.json
    assert same_ip.json["credentials"] == {"username": "root", "domain": "", "password_set": True}
    assert same_ip.json["storage"] == [{"name": "C:\\", "size": 50}]
    other_ip = getattr(client, method)(url, json={**changed, "ip": "10.0.0.11"})
    assert other_ip.status_code == 422
    assert error_code(other_ip) == "immutable_field"
    assert "ip" in other_ip.json["error"]["fields"]
    assert client.get(url).json["ip"] == "10.0.0.10"


def test_patch_changes_only_what_is_sent(client):
    created = make_workload(client)
    response = client.patch(f"/api/v1/workloads/{created['id']}", json={"credentials": {"username": "ops"}})
    assert response.status_code == 200
    assert response.json["credentials"]["username"] == "ops"
    assert response.json["credentials"]["domain"] == "CORP"
    assert response.json["storage"] == created["storage"]


def test_invalid_update_changes_nothing(client):
    created = make_workload(client)
    url = f"/api/v1/workloads/{created['id']}"
    response = client.patch(url, json={"storage": [{"name": "C:\\", "size": -1}]})
    assert response.status_code == 422
    assert client.get(url).json == created


def test_delete_is_204_then_404_and_in_use_is_409(client):
    free = make_workload(client, ip="10.0.0.1")
    used = make_workload(client, ip="10.0.0.2")
    make_migration(client, used["id"])
    assert client.delete(f"/api/v1/workloads/{free['id']}").status_code == 204
    assert client.get(f"/api/v1/workloads/{free['id']}").status_code == 404
    response = client.delete(f"/api/v1/workloads/{used['id']}")
    assert response.status_code == 409 and error_code(response) == "in_use"
    assert client.get(f"/api/v1/workloads/{used['id']}").status_code == 200


def test_list_is_paginated(client):
    for i in range(7):
        make_workload(client, ip=f"10.1.0.{i}")
    body = client.get("/api/v1/workloads?per_page=3&page=3").json
    assert body["total"] == 7 and body["page"] == 3 and body["per_page"] == 3
    assert [w["ip"] for w in body["items"]] == ["10.1.0.6"]
    assert client.get("/api/v1/workloads").json["per_page"] == 50
    assert client.get("/api/v1/workloads?per_page=5000").json["per_page"] == 500


@pytest.mark.parametrize("query, field", [("page=0", "page"), ("page=x", "page"), ("per_page=-1", "per_page")])
def test_bad_paging_is_422(client, query, field):
    response = client.get(f"/api/v1/workloads?{query}")
    assert response.status_code == 422 and field in response.json["error"]["fields"]
