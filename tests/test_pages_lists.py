"""Every paged list keeps what it was asked for on its other pages: its filters and its page size."""
from __future__ import annotations

import html
import re

import pytest

from conftest import make_migration, make_workload


def links(page: str) -> dict[str, str]:
    return {rel: html.unescape(url) for url, rel in re.findall(r'href="([^"]+)" rel="(next|prev)"', page)}


def _workloads(client):
    for i in range(3):
        make_workload(client, ip=f"10.1.0.{i + 1}")


def _migrations(client):
    source = make_workload(client)
    for _ in range(3):
        make_migration(client, source["id"])


def _runs(client):
    for _ in range(3):
        assert client.post("/api/v1/runs", json={"environment_id": 3,
                                                 "test_files": ["sample_tests/test_passing.py"]}).status_code == 201


def _events(client):
    for i in range(3):
        client.post("/api/v1/events", json={"user_id": "bob", "description": f"hello {i}"})


def _audit(client):
    _workloads(client)


@pytest.mark.parametrize("make, url, kept", [
    (_workloads, "/workloads/?per_page=1", {"per_page=1"}),
    (_migrations, "/migrations/?per_page=1", {"per_page=1"}),
    (_runs, "/runs/?per_page=1&environment_id=3", {"per_page=1", "environment_id=3"}),
    (_events, "/events/?per_page=1&user_id=bob", {"per_page=1", "user_id=bob"}),
    (_audit, "/admin/audit/?per_page=1&action=workload", {"per_page=1", "action=workload"}),
])
def test_older_and_newer_keep_the_filters_and_the_page_size(client, make, url, kept):
    make(client)
    older = links(client.get(url).get_data(as_text=True))["next"]
    assert "page=2" in older and all(k in older for k in kept), older
    newer = links(client.get(older).get_data(as_text=True))["prev"]
    assert "page=1" in newer and all(k in newer for k in kept), newer


def test_the_inbox_is_not_paged(client):
    """The inbox shows the newest 100 notifications of one account (``?user_id=``, kept by its form): no pager."""
    assert 'rel="next"' not in client.get("/inbox").get_data(as_text=True)
