"""A real browser (Playwright driving Debian's Chromium) against the real all-in-one process: create a wave
with the form on /waves/, then watch its page: one bar per migration and an overall bar, updated in place by
the polled partial (no page load) until the wave is done, when polling stops. Pause and resume are real
forms. No console error may be logged (a CSP violation would be one). Skips like the other browser tests
when Chromium is missing (fails in CI)."""
from __future__ import annotations

import pytest

from e2e import serve, sign_in
from test_browser import Console, browser  # noqa: F401  (browser: the module-scoped fixture, same skip/fail rule)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT_MS = 20_000
TARGET = {"cloud_type": "aws", "cloud_credentials": {"username": "cloud", "password": "cl0ud!"}}


@pytest.fixture(scope="module")
def server(browser, tmp_path_factory):  # noqa: F811
    yield from serve(tmp_path_factory, "browser-waves", workers=2, MIGRATION_DURATION_SECONDS=2)


def _migrations(server, count: int) -> list[int]:
    admin = server.http()
    ids = []
    for i in range(count):
        workload = admin.post("/api/v1/workloads", {
            "ip": f"10.91.0.{i + 1}", "credentials": {"username": "u", "password": "p"},
            "storage": [{"name": "C:\\", "size": 40}, {"name": "D:\\", "size": 20}]})
        assert workload.status == 201, workload
        made = admin.post("/api/v1/migrations", {"source_id": workload.json()["id"],
                                                 "selected_mount_points": ["C:\\", "D:\\"], "target": TARGET})
        assert made.status == 201, made
        ids.append(made.json()["id"])
    return ids


def _progress(page) -> dict | None:
    return page.evaluate("""() => {
        const s = document.querySelector('#wave-progress');
        if (!s) return null;
        return {
            state: s.querySelector('.state .badge')?.textContent.trim(),
            bars: [...s.querySelectorAll('progress')].map(p => [p.getAttribute('aria-label'), p.value, p.max]),
            polling: s.querySelectorAll('[hx-trigger]').length,
            forms: s.querySelectorAll('form[method=post]').length,
        };
    }""")


def test_create_a_wave_and_watch_its_bars_until_it_is_done(browser, server):  # noqa: F811
    ids = _migrations(server, 3)
    context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.console = Console(page)
    sign_in(page)

    page.goto("/migrations/")
    page.get_by_role("link", name="Waves").click()
    page.wait_for_url("**/waves/")
    page.fill("#name", "Browser wave")
    for migration_id in ids:
        page.check(f'#wave-migrations input[value="{migration_id}"]')
    page.fill("#max_parallel", "1")
    page.check("#stop_on_error")
    with page.expect_navigation():
        page.get_by_role("button", name="Create wave").click()
    assert "/waves/" in page.url and page.locator(".flash").first.inner_text().startswith("Wave #")

    page.evaluate("window.__e2eMarker = 'same-document'")
    first = _progress(page)
    assert first["state"] == "running" and first["polling"] == 1
    assert len(first["bars"]) == 1 + len(ids)  # overall + one per migration
    seen_states = set()

    def one_running_at_a_time():
        now = _progress(page)
        seen_states.add(now["state"])
        running = page.locator("#wave-progress .wave-members .badge-running").count()
        assert running <= 1, "more than max_parallel running"
        return now["state"] == "done"

    page.wait_for_function("() => document.querySelector('#wave-progress .state .badge-running') !== null")
    # pause: a real form, answered by the refreshed partial (htmx), no page load
    page.get_by_role("button", name="Pause").click()
    page.wait_for_function("() => document.querySelector('#wave-progress .state .badge-paused') !== null")
    page.get_by_role("button", name="Resume").click()
    page.wait_for_function("() => document.querySelector('#wave-progress .state .badge-running') !== null")
    for _ in range(200):
        if one_running_at_a_time():
            break
        page.wait_for_timeout(200)
    final = _progress(page)
    assert final["state"] == "done", final
    assert final["polling"] == 0 and final["forms"] == 0  # a final state: no trigger, no buttons
    assert all(value == maximum for _, value, maximum in final["bars"]), final["bars"]
    assert page.evaluate("window.__e2eMarker") == "same-document", "the page reloaded instead of swapping"
    assert page.console.errors == []
    context.close()
