"""Every role walks the whole site as a person would, by following links: no link it is shown leads to a
refusal or an error, and it is offered no form it may not submit."""
from __future__ import annotations

import html
import re
from collections import deque
from urllib.parse import urlsplit

import pytest

from conftest import make_migration, make_workload

pytestmark = pytest.mark.one_database  # who may use a route does not depend on the database

LIMIT = 300  # pages per walk at most (the seeded site has far fewer)
SKIP = ("/static/",)
OWN_FORMS = {"/logout", "/account"}  # every signed-in account may sign out and manage its own account


def seed(client, work) -> None:
    """One of everything, made by the admin: a workload, a migration that ran, a finished run, an event."""
    workload = make_workload(client)
    migration = make_migration(client, workload["id"])
    assert client.post(f"/api/v1/migrations/{migration['id']}/run", json={}).status_code == 202
    run = client.post("/api/v1/runs", json={"environment_id": 3, "test_files": ["sample_tests/test_passing.py"]})
    assert run.status_code == 201
    assert client.post("/api/v1/events", json={"user_id": "viewer-user", "description": "hello"}).status_code == 201
    work()


def walk(client) -> dict[str, str]:
    """Every page reachable from / by links (GET), with its HTML; fails on the first refusal or error."""
    seen: dict[str, str] = {}
    todo = deque(["/"])
    while todo and len(seen) < LIMIT:
        url = todo.popleft()
        if url in seen:
            continue
        response = client.get(url)
        assert response.status_code == 200, f"{url} answered {response.status_code}"
        body = response.get_data(as_text=True) if response.mimetype == "text/html" else ""
        seen[url] = body
        for link in re.findall(r'href="([^"]+)"', body):
            link = html.unescape(link)
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or not link.startswith("/") or link.startswith(SKIP):
                continue
            todo.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return seen


def post_forms(pages: dict[str, str]) -> set[str]:
    found = set()
    for body in pages.values():
        for form in re.findall(r"<form\b[^>]*>", body):
            if re.search(r'method="post"', form, re.I):
                action = re.search(r'action="([^"]*)"', form)
                found.add(urlsplit(html.unescape(action.group(1))).path if action else "")
    return found


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_every_link_a_role_is_shown_opens(client, work, as_role, role):
    seed(client, work)
    walker = client if role == "admin" else as_role(role)
    pages = walk(walker)
    assert len(pages) > 15  # the walk really went through the site
    assert any(p.startswith("/runs/") for p in pages) and any(p.startswith("/migrations/") for p in pages)
    if role == "admin":
        assert "/admin/users" in pages and any(p.startswith("/admin/audit") for p in pages)
    else:
        assert not any(p.startswith("/admin/") for p in pages)


def test_a_viewer_is_offered_no_form_that_changes_anything(client, work, as_role):
    seed(client, work)
    forms = post_forms(walk(as_role("viewer")))
    forms = {f for f in forms if not f.startswith("/account/tokens/")}  # revoking one's own token
    assert forms <= OWN_FORMS | {""}, forms - OWN_FORMS  # "" = a form posting to its own page: /account only
    operator_forms = post_forms(walk(as_role("operator")))
    assert any("/runs/" in f for f in operator_forms)  # the comparison means something: operators get them
    environment_forms = {f for f in operator_forms if f.startswith("/environments/")}
    assert any(f.endswith("/hold") for f in environment_forms)  # holds are an operator's (issue 13)
    assert all(f.endswith(("/hold", "/release")) for f in environment_forms), environment_forms
    assert not any(f.startswith("/admin/") for f in operator_forms)
