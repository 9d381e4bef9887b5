"""A real browser (Playwright driving Debian's Chromium) against the real all-in-one process: a migration with a
validation is run from its page; once copied, its validation run appears inline without a page load (out of
band, with the migration's own poll) and its log tails live there through the run's own partials; the migration
ends success after the run, and every poll stops. No console error may be logged (a CSP violation would be one)."""
from __future__ import annotations

import pytest

from e2e import ARTIFACTS, serve, sign_in, wait_for
from test_browser import Console, browser  # noqa: F401  (browser: the module-scoped fixture, same skip/fail rule)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT = 40  # s; 2 CPUs shared with other tests
SCREENSHOT = ARTIFACTS / "browser-validation.png"
FILES = ["sample_tests/test_slow_progress.py", "sample_tests/validation/test_target.py"]


@pytest.fixture(scope="module")
def server(browser, tmp_path_factory):  # noqa: F811
    yield from serve(tmp_path_factory, "browser-validation", MIGRATION_DURATION_SECONDS=1)


def _until(page, predicate: str, message: str, timeout: float = TIMEOUT):
    """Poll a JS predicate from Python (wait_for_function evaluates a string: the CSP forbids it)."""
    return wait_for(lambda: page.evaluate(predicate), timeout, interval=0.05, message=f"{message} on {page.url}")


def test_run_a_validated_migration_and_watch_its_validation_log_tail(browser, server):  # noqa: F811
    api = server.http()
    source = api.post("/api/v1/workloads", json_body={
        "ip": "10.77.0.9", "credentials": {"username": "administrator", "password": "W0rkload-Pa55!"},
        "storage": [{"name": "C:\\", "size": 40}, {"name": "D:\\", "size": 20}]}).json()
    migration = api.post("/api/v1/migrations", json_body={
        "source_id": source["id"], "selected_mount_points": ["C:\\", "D:\\"],
        "target": {"cloud_type": "azure", "cloud_credentials": {"username": "cloud", "password": "Cl0ud-Pa55!"}},
        "validation": {"test_files": FILES, "environment_id": 33}}).json()
    context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    console = Console(page)
    try:
        sign_in(page)
        page.goto(f"/migrations/{migration['id']}")
        assert page.locator("#validation-run #run-status").count() == 0
        page.evaluate("window.__e2eMarker = 'same-document'")
        page.get_by_role("button", name="Run migration").click()
        _until(page, "() => document.querySelector('#validation-run #run-status') !== null",
               "the validation run to appear inline")
        _until(page, "() => /progress: batch [3-9]\\/12/.test(document.querySelector('#run-log').textContent)",
               "the validation log to tail live")
        assert page.evaluate("window.__e2eMarker") == "same-document", "the page was reloaded"
        assert page.locator("#migration-status .badge").inner_text().strip() == "running"
        assert "validating" in page.locator("#migration-status .state").inner_text()
        _until(page, "() => document.querySelector('#migration-status .badge').textContent.trim() === 'success'",
               "the migration to succeed after its run")
        _until(page, "() => !document.querySelector('#migration-status [hx-trigger]') && "
                     "!document.querySelector('#validation-run [hx-trigger]')", "every poll to stop", 15)
        assert page.locator("#run-status .state .badge").inner_text().strip() == "success"
        assert "test_show_the_target PASSED" in page.locator("#run-log").inner_text()
        assert page.evaluate("window.__e2eMarker") == "same-document"
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        assert console.errors == []
    finally:
        context.close()
