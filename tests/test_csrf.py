"""With CSRF switched on, as in production: forms need the token, htmx sends it as a header, the API is exempt.

``client`` is the first admin, signed in (session cookie; conftest's ``client_as``): the pages need a session."""
from __future__ import annotations

import re

import pytest

from conftest import ADMIN, client_as, make_migration, make_workload

pytestmark = pytest.mark.one_database  # Flask-WTF's token check, the same on any database


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


WORKLOAD_FORM = {"ip": "10.0.0.1", "username": "a", "password": "b", "storage-0-name": "C:", "storage-0-size": "1",
                 "save": "1"}


def test_a_form_post_with_the_token_works(client):
    token = token_from(client.get("/workloads/new").get_data(as_text=True))
    response = client.post("/workloads/new", data={"csrf_token": token, **WORKLOAD_FORM})
    assert response.status_code == 303
    assert client.get("/api/v1/workloads").json["total"] == 1


def test_the_token_of_another_session_is_refused(app, client):
    token = token_from(client.get("/workloads/new").get_data(as_text=True))
    other = client_as(app, "olga", "operator")
    other.get("/workloads/new")  # a session of its own, with its own CSRF secret
    response = other.post("/workloads/new", data={"csrf_token": token, **WORKLOAD_FORM})
    assert response.status_code == 400 and "CSRF" in response.get_data(as_text=True)
    assert client.get("/api/v1/workloads").json["total"] == 0


def test_htmx_sends_the_token_in_a_header(client):
    migration = make_migration(client, make_workload(client)["id"])
    page = client.get(f"/migrations/{migration['id']}").get_data(as_text=True)
    header_token = re.search(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'', page).group(1)
    refused = client.post(f"/migrations/{migration['id']}/run", headers={"HX-Request": "true"})
    assert refused.status_code == 400
    accepted = client.post(f"/migrations/{migration['id']}/run",
                           headers={"HX-Request": "true", "X-CSRFToken": header_token})
    assert accepted.status_code == 200 and "running" in accepted.get_data(as_text=True)


def test_the_json_api_is_exempt(app, client):
    assert client.post("/api/v1/workloads", json={"ip": "x"}).status_code == 422
    # safe because the API never takes the session cookie: without a token a signed-in browser is nobody
    browser = client_as(app, ADMIN, token=False)
    response = browser.post("/api/v1/workloads", json={"ip": "10.0.0.1"})
    assert response.status_code == 401 and response.json["error"]["code"] == "unauthorized"
    # nor a form body: a cross-site form cannot reach it (415, not 400 for a missing CSRF token)
    response = client.post("/api/v1/workloads", data={"ip": "10.0.0.1"})
    assert response.status_code == 415 and response.json["error"]["code"] == "unsupported_media_type"
    assert client.get("/api/v1/workloads").json["total"] == 0
