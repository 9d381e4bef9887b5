"""With CSRF switched on, as in production: forms need the token, htmx sends it as a header, the API is exempt."""
from __future__ import annotations

import re

import pytest

from conftest import make_migration, make_workload


@pytest.fixture
def config(config):
    return {**config, "WTF_CSRF_ENABLED": True}


def token_from(page: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


def test_a_form_post_without_the_token_is_refused_and_changes_nothing(client):
    response = client.post("/workloads/new", data={"ip": "10.0.0.1", "username": "a", "password": "b",
                                                   "storage-0-name": "C:", "storage-0-size": "1", "save": "1"})
    assert response.status_code == 400 and "CSRF" in response.get_data(as_text=True)
    assert client.get("/api/v1/workloads").json["total"] == 0


def test_a_form_post_with_the_token_works(client):
    token = token_from(client.get("/workloads/new").get_data(as_text=True))
    response = client.post("/workloads/new", data={"csrf_token": token, "ip": "10.0.0.1", "username": "a",
                                                   "password": "b", "storage-0-name": "C:", "storage-0-size": "1",
                                                   "save": "1"})
    assert response.status_code == 303


def test_htmx_sends_the_token_in_a_header(client):
    migration = make_migration(client, make_workload(client)["id"])
    page = client.get(f"/migrations/{migration['id']}").get_data(as_text=True)
    header_token = re.search(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'', page).group(1)
    refused = client.post(f"/migrations/{migration['id']}/run", headers={"HX-Request": "true"})
    assert refused.status_code == 400
    accepted = client.post(f"/migrations/{migration['id']}/run",
                           headers={"HX-Request": "true", "X-CSRFToken": header_token})
    assert accepted.status_code == 200 and "running" in accepted.get_data(as_text=True)


def test_the_json_api_is_exempt(client):
    assert client.post("/api/v1/workloads", json={"ip": "x"}).status_code == 422
