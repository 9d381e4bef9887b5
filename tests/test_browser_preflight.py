"""A real browser on the detail page of a migration whose source lost a selected volume: the Preflight section lists
the failed check, Run is refused beside the button (htmx, no page load) and the migration stays `not started`;
once the migration is fixed, "Check again" shows every check passed, and Run then starts it. No console error."""
from __future__ import annotations

import pytest

from test_browser import _mark_document, _same_document, _status, browser, page, server  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

IP = "10.88.1.5"


def test_the_detail_page_shows_the_checks_refuses_run_beside_the_button_and_checks_again(page, server):  # noqa: F811
    api = server.http()
    workload = api.post("/api/v1/workloads", {"ip": IP, "credentials": {"username": "u", "password": "p"},
                                              "storage": [{"name": "C:\\", "size": 40}, {"name": "D:\\", "size": 10}]})
    assert workload.status == 201, workload
    migration = api.post("/api/v1/migrations", {
        "source_id": workload.json()["id"], "selected_mount_points": ["C:\\", "D:\\"],
        "target": {"cloud_type": "aws", "cloud_credentials": {"username": "c", "password": "p"}}})
    assert migration.status == 201, migration
    mid = migration.json()["id"]
    edited = api.request("PATCH", f"/api/v1/workloads/{workload.json()['id']}",
                         json_body={"storage": [{"name": "C:\\", "size": 40}]})
    assert edited.status == 200, edited

    page.goto(f"/migrations/{mid}")
    section = page.locator("#preflight")
    assert section.get_by_role("heading", name="Preflight").is_visible()
    failed = section.locator("li.bad")
    assert failed.count() == 1 and f"D:\\ is no longer a volume of {IP}." in failed.inner_text()
    assert section.locator("li.ok").count() == 4

    _mark_document(page)
    page.get_by_role("button", name="Run migration").click()
    alert = page.locator("#migration-status").get_by_role("alert").first
    alert.wait_for()
    assert f"Preflight failed: D:\\ is no longer a volume of {IP}." in alert.inner_text()
    assert _same_document(page), "a refused Run should swap the status (htmx), not reload the page"
    assert _status(page)["state"] == "not started"
    assert page.locator("#preflight li.bad").count() == 1  # the section, swapped out of band, still shows why

    fixed = api.request("PATCH", f"/api/v1/migrations/{mid}", json_body={"selected_mount_points": ["C:\\"]})
    assert fixed.status == 200, fixed
    page.get_by_role("link", name="Check again").click()
    page.locator("#preflight").get_by_text("Every check passed").wait_for()
    assert _same_document(page) and page.locator("#preflight li.bad").count() == 0

    page.get_by_role("button", name="Run migration").click()
    page.locator("#migration-status .badge-running, #migration-status .badge-success").first.wait_for()
    assert page.locator("#preflight").get_by_role("heading", name="Preflight").count() == 0  # none once it runs
    assert page.console.errors == []
