"""A real browser (Playwright driving Debian's Chromium) against the real all-in-one process: a hidden tab
does not poll (static/app.js cancels its pollers' requests), and a tab shown again asks at once instead of
waiting for the next tick. No console error may be logged (a CSP violation would be one)."""
from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest

from e2e import serve, sign_in
from test_browser import Console, browser  # noqa: F401  (browser: the module-scoped fixture, same skip/fail rule)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT_MS = 15_000
SET_HIDDEN = """hidden => {
    Object.defineProperty(document, 'hidden', {value: hidden, configurable: true});
    Object.defineProperty(document, 'visibilityState', {value: hidden ? 'hidden' : 'visible', configurable: true});
    document.dispatchEvent(new Event('visibilitychange'));
}"""


@pytest.fixture(scope="module")
def server(browser, tmp_path_factory):  # noqa: F811
    yield from serve(tmp_path_factory, "browser-polling", workers=1)


def test_a_hidden_tab_does_not_poll_and_asks_at_once_when_shown_again(browser, server):  # noqa: F811
    context = browser.new_context(base_url=server.url)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.console = Console(page)
    requests: list[tuple[float, str]] = []
    page.on("request", lambda r: requests.append((time.monotonic(), r.url)))

    def polls(path: str, since: float) -> list[float]:
        return [t for t, url in requests if t > since and urlsplit(url).path == path]

    sign_in(page)
    page.goto("/environments/")
    with page.expect_request(lambda r: "/inbox/badge" in r.url, timeout=6_000):
        pass  # visible: the badge polls every 3 s
    page.evaluate(SET_HIDDEN, True)
    hidden_at = time.monotonic()
    page.wait_for_timeout(7_000)  # two ticks of the badge, none of the grid's 10 s
    assert not polls("/inbox/badge", hidden_at + 0.5), "a hidden tab polled"
    shown_at = time.monotonic()
    page.evaluate(SET_HIDDEN, False)
    page.wait_for_timeout(1_000)
    badge, grid = polls("/inbox/badge", shown_at), polls("/environments/", shown_at)
    assert badge and badge[0] - shown_at < 1, "the badge waited for its next tick"
    assert grid and grid[0] - shown_at < 1, "the grid waited for its next tick (10 s)"
    assert page.locator("#environment-grid li.cell").count() == 100 and page.locator("#inbox-link").count() == 1
    assert page.console.errors == []
    context.close()
