"""A real browser (Playwright driving Debian's Chromium) against the real all-in-one process: accounts as people
meet them.

* The admin opens /runs/, lands on the sign-in form, signs in and is sent back to /runs/; starts a run on the
  New run page (which shows the account), sees the account as the run's user on the run page, signs out with the
  top bar's "Sign out" button, and /runs/ then leads to the sign-in form again.
* A viewer (created by the admin through the API) signs in and sees the migration page, the workloads and the
  runs, but none of the buttons or links that would change something (the admin, on the same pages, sees them:
  so their absence proves something); New run answers 403.

No console error may be logged (a CSP violation would be one).
"""
from __future__ import annotations

import re
import urllib.parse

import pytest

from e2e import ADMIN, Http, serve, sign_in, wait_for
from test_browser import Console, browser  # noqa: F401  (browser: the module-scoped fixture, same skip/fail rule)
from test_browser_runs import shown_username

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT_MS = 15_000
RUN_TIMEOUT = 60  # s; a quiet machine needs about 2 (2 CPUs shared with others: far more)
VIEWER, VIEWER_PASSWORD = "viewer-vic", "Viewer-Pa55word!"
ENVIRONMENT = "23"
SAMPLE = "sample_tests/test_passing.py"
RUN_URL = re.compile(r"/runs/(\d+)$")
ACCOUNT_LINK = 'header .who a[href="/account"]'
# What a viewer may not press: the migration's Run/Retry/Cancel/Edit/Delete, a workload's Add/Edit/Delete,
# a run's New run/Run again/Cancel.
CHANGES = re.compile(r"^\s*(Run|Retry|Start|Cancel|Delete|Edit|Add|New run)\b")


@pytest.fixture(scope="module")
def server(browser, tmp_path_factory):  # noqa: F811
    yield from serve(tmp_path_factory, "browser-accounts", users=[(VIEWER, VIEWER_PASSWORD, "viewer")])


@pytest.fixture(scope="module")
def migration(server) -> dict:
    """A workload and a migration of it, made by the admin through the API."""
    admin = server.http()
    created = admin.post("/api/v1/workloads", {
        "ip": "10.66.0.9", "credentials": {"username": "admin", "password": "N0t-Shown!"},
        "storage": [{"name": "C:\\", "size": 40}, {"name": "D:\\", "size": 100}]})
    assert created.status == 201, created
    workload = created.json()
    created = admin.post("/api/v1/migrations", {
        "source_id": workload["id"], "selected_mount_points": ["C:\\"],
        "target": {"cloud_type": "aws", "cloud_credentials": {"username": "cloud", "password": "Cl0ud-Pa55!"}}})
    assert created.status == 201, created
    return created.json()


@pytest.fixture
def new_page(browser, server):  # noqa: F811
    """``new_page()``: a page in a fresh context (no cookies), with a console recorder."""
    contexts = []

    def make():
        context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.console = Console(page)
        return page

    yield make
    for context in contexts:
        context.close()


def _at_login(page, next_path: str) -> bool:
    url = urllib.parse.urlsplit(page.url)
    return url.path == "/login" and urllib.parse.parse_qs(url.query).get("next") == [next_path]


def _actions(page, scope: str = "main") -> list[str]:
    """The names of the buttons and links in ``scope`` that would change something."""
    names = page.locator(scope).locator("button, a, input[type=submit]").evaluate_all(
        "els => els.map(e => (e.innerText || e.value || '').trim())")
    return [name for name in names if CHANGES.match(name)]


def test_sign_in_start_a_run_as_yourself_and_sign_out(new_page, server):
    page = new_page()

    # --- not signed in: /runs/ leads to the sign-in form, which leads back there ----------------------------
    page.goto("/runs/")
    assert _at_login(page, "/runs/"), page.url
    assert page.locator("header .who").count() == 0, "the top bar shows an account before signing in"
    assert page.locator("#csrf_token").get_attribute("type") == "hidden"
    page.fill("#username", ADMIN)
    page.fill("#password", server.admin_password)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    assert urllib.parse.urlsplit(page.url).path == "/runs/", page.url
    assert page.locator(ACCOUNT_LINK).inner_text() == f"{ADMIN} · admin"

    # --- a run, started on the New run page, carries the signed-in account ------------------------------------
    page.get_by_role("link", name="New run").click()
    page.wait_for_url("**/runs/new")
    assert shown_username(page) == ADMIN, "the run form does not show the signed-in account"
    page.select_option("#environment_id", ENVIRONMENT)
    page.select_option("#test_files", SAMPLE)
    with page.expect_navigation():
        page.get_by_role("button", name="Start run").click()
    page.wait_for_url(RUN_URL)
    run_id = int(RUN_URL.search(page.url).group(1))
    user = page.locator("dt", has_text=re.compile(r"^User$")).locator("xpath=following-sibling::dd[1]")
    assert user.inner_text().strip() == ADMIN
    api = Http(server.url)
    api.get_token(ADMIN, server.admin_password)
    assert api.get(f"/api/v1/runs/{run_id}").json()["username"] == ADMIN
    wait_for(lambda: page.evaluate("() => ['success', 'failed', 'error', 'cancelled'].includes("
                                   "document.querySelector('#run-status .badge')?.textContent.trim())"),
             RUN_TIMEOUT, interval=0.1, message="the run to end")
    assert page.locator("#run-status .badge").first.inner_text() == "success"

    # --- Sign out (the top bar's button posts to /logout); the pages ask to sign in again ---------------------
    with page.expect_navigation():
        page.locator("header").get_by_role("button", name="Sign out").click()
    assert urllib.parse.urlsplit(page.url).path == "/login", page.url
    assert page.get_by_text("You are signed out.").is_visible()
    page.goto("/runs/")
    assert _at_login(page, "/runs/"), f"/runs/ after signing out: {page.url}"
    page.goto(f"/runs/{run_id}")
    assert _at_login(page, f"/runs/{run_id}"), page.url
    assert page.console.errors == []


def test_a_viewer_sees_everything_but_may_change_nothing(new_page, server, migration):
    admin, viewer = new_page(), new_page()
    sign_in(admin, ADMIN, server.admin_password)
    sign_in(viewer, VIEWER, VIEWER_PASSWORD)
    assert viewer.locator(ACCOUNT_LINK).inner_text() == f"{VIEWER} · viewer"
    assert admin.locator("header .who").get_by_role("link", name="Accounts").count() == 1
    assert viewer.locator("header .who").get_by_role("link", name="Accounts").count() == 0

    # /runs/?username=nobody: the empty list, whatever runs the other test started on this server.
    for path, title in ((f"/migrations/{migration['id']}", None), ("/workloads/", "Workloads"), ("/runs/", "Test runs"),
                        ("/runs/?username=nobody", "Test runs")):
        for page in (admin, viewer):
            response = page.goto(path)
            assert response.status == 200, (page, path, response.status)
        if title:
            assert viewer.locator("h1").inner_text() == title
        shown = _actions(admin)
        assert shown, f"{path}: the admin sees no action either, so the viewer's check would prove nothing"
        assert _actions(viewer) == [], f"{path}: a viewer is offered {_actions(viewer)} (the admin: {shown})"

    # What the admin sees and the viewer does not, page by page.
    admin.goto(f"/migrations/{migration['id']}")
    assert admin.locator("#migration-status").get_by_role("button", name="Run migration").count() == 1
    viewer.goto(f"/migrations/{migration['id']}")
    status = viewer.locator("#migration-status")
    assert status.count() == 1 and "10.66.0.9" in viewer.locator("main").inner_text()
    assert status.get_by_role("button").count() == 0, status.get_by_role("button").all_inner_texts()
    viewer.goto("/workloads/")
    assert viewer.locator("tr", has=viewer.get_by_text("10.66.0.9", exact=True)).count() == 1
    assert viewer.get_by_role("link", name="Delete").count() == 0
    assert viewer.get_by_role("link", name="10.66.0.9").count() == 0, "the viewer's IP links to the edit form"
    viewer.goto("/runs/")
    assert viewer.get_by_role("link", name="New run").count() == 0

    # New run is not for viewers, even typed in by hand.
    response = viewer.goto("/runs/new")
    assert response.status == 403, response.status
    assert viewer.locator("#environment_id").count() == 0 and viewer.get_by_role("button", name="Start run").count() == 0
    assert admin.goto("/runs/new").status == 200

    assert admin.console.errors == []
    # A 403 page load is logged by Chromium as a console error ("Failed to load resource"): nothing else may be.
    assert [e for e in viewer.console.errors if "status of 403" not in e] == []
