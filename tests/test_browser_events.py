"""A real browser (Playwright driving Debian's Chromium) against the real all-in-one process (WORKERS=2):
the nav's inbox badge tells a QA user that a test run ended, without a page load.

Signed in (the /login form) as the operator ``qa-dana``: New run (the form shows the account, environment,
sample_tests/test_passing.py), start it; the nav badge shows no count. The run ends in success; the badge (it polls /inbox/badge every 3 s) rises to 1 on the same document.
The inbox link opens the inbox: the event "Test run #N on environment E ended success..." is listed, unread,
with a link to the run page; the badge is cleared there and stays cleared on the next poll (which keeps the
nav's current-page mark and the keyboard focus), and the link leads back to the run. No console error may be logged (a CSP violation would be one).

A recorder (a MutationObserver installed from the test, not by the app) notes every state of the badge on the
run page, with the time, so the rise is seen however the test's own polling is scheduled.
"""
from __future__ import annotations

import re
import time

import pytest

from e2e import ARTIFACTS, serve, sign_in, wait_for
from test_browser import Console, browser  # noqa: F401  (browser: the module-scoped fixture, same skip/fail rule)
from test_browser_runs import shown_username

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT_MS = 15_000
RUN_TIMEOUT = 60  # s for the run to end; a quiet machine needs about 2 (2 CPUs shared with others: far more)
BADGE_TIMEOUT = 20  # s from the run's end to the badge showing it: delivery + at most one 3 s poll period
USERNAME = "qa-dana"
PASSWORD = "Dana-Pa55word!"
ENVIRONMENT = "17"
SAMPLE = "sample_tests/test_passing.py"
SCREENSHOT = ARTIFACTS / "browser-inbox.png"
RUN_URL = re.compile(r"/runs/(\d+)$")

# Every state of the nav badge (the count shown, or null), with when it was seen; the link is replaced by each poll
# (hx-swap="outerHTML"), so the whole nav is observed.
RECORDER = """() => {
    window.__e2eMarker = 'same-document';
    const rec = window.__e2eBadge = [];
    const snap = () => {
        const link = document.querySelector('#inbox-link');
        const count = link?.querySelector('.count')?.textContent.trim() ?? null;
        const label = link?.querySelector('.count')?.getAttribute('aria-label') ?? null;
        if (!rec.length || rec.at(-1).count !== count) rec.push({t: performance.now(), count, label});
    };
    new MutationObserver(snap).observe(document.querySelector('header nav'),
                                       {childList: true, subtree: true, characterData: true});
    snap();
}"""


@pytest.fixture(scope="module")
def server(browser, tmp_path_factory):  # noqa: F811
    yield from serve(tmp_path_factory, "browser-events", users=[(USERNAME, PASSWORD, "operator")])


@pytest.fixture
def page(browser, server):  # noqa: F811
    context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.console = Console(page)
    page.requests = []
    page.on("request", lambda r: page.requests.append((time.monotonic(), r.url)))
    sign_in(page, USERNAME, PASSWORD)
    yield page
    context.close()


def _badge(page) -> str | None:
    """The unread count the nav shows, or None when it shows none."""
    return page.evaluate("() => document.querySelector('#inbox-link .count')?.textContent.trim() ?? null")


def _until(page, predicate: str, timeout: float, message: str):
    """Poll a JS predicate from Python (wait_for_function evaluates a string: the CSP forbids it)."""
    return wait_for(lambda: page.evaluate(predicate), timeout, interval=0.05, message=f"{message} on {page.url}")


def test_the_nav_badge_announces_an_ended_run_and_the_inbox_links_to_it(page, server):
    started = time.monotonic()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        timings[name] = round(time.monotonic() - started, 1)

    # --- New run as qa-dana, the signed-in account; nothing has ended yet, so the badge shows no count --------
    page.goto("/runs/")
    assert _badge(page) is None
    page.get_by_role("link", name="New run").click()
    page.wait_for_url("**/runs/new")
    assert shown_username(page) == USERNAME
    page.select_option("#environment_id", ENVIRONMENT)
    page.select_option("#test_files", SAMPLE)
    with page.expect_navigation():
        page.get_by_role("button", name="Start run").click()
    page.wait_for_url(RUN_URL)
    run_id = int(RUN_URL.search(page.url).group(1))
    page.evaluate(RECORDER)
    first = page.evaluate("window.__e2eBadge[0]")
    assert first["count"] is None, f"the badge shows {first} before the run ended"
    assert page.locator("#inbox-link").get_attribute("href") == "/inbox"
    lap("run started")

    # --- the run ends; the badge rises to 1 on the same document -------------------------------------------
    _until(page, "() => ['success', 'failed', 'error', 'cancelled'].includes("
                 "document.querySelector('#run-status .badge')?.textContent.trim())", RUN_TIMEOUT, "the run to end")
    assert page.locator("#run-status .badge").first.inner_text() == "success"
    ended = time.monotonic()
    lap("run ended")
    _until(page, "() => document.querySelector('#inbox-link .count')?.textContent.trim() === '1'", BADGE_TIMEOUT,
           "the nav badge to count 1")
    lap("badge 1")
    assert page.evaluate("window.__e2eMarker") == "same-document", "the page was reloaded"
    states = page.evaluate("window.__e2eBadge")
    assert [s["count"] for s in states] == [None, "1"], f"the badge went through {states}"
    assert states[-1]["label"] == "1 unread"
    polls = page.evaluate("() => performance.getEntriesByType('resource')"
                          ".filter(e => e.name.endsWith('/inbox/badge')).map(e => e.startTime)")
    assert polls, "the badge was never polled"
    assert all(b - a >= 2500 for a, b in zip(polls, polls[1:])), f"the badge polled more often than every 3 s: {polls}"
    assert states[-1]["t"] >= polls[-1], "the count changed before the poll that brought it"
    assert not [url for _, url in page.requests if url.endswith("/inbox")], "the inbox itself was loaded"
    print(f"\nbadge: {len(polls)} poll(s); count shown {round(time.monotonic() - ended, 1)} s after the run page "
          "showed the end")

    # --- the inbox: the event, unread, linked to the run; the badge cleared --------------------------------
    with page.expect_navigation():
        page.locator("#inbox-link").click()
    page.wait_for_url("**/inbox")
    assert page.locator("h1").inner_text() == f"Inbox of {USERNAME}"
    items = page.locator("ul.inbox li")
    assert items.count() == 1
    item = items.first
    message = item.locator(".message").inner_text()
    assert message == (f"Test run #{run_id} on environment {ENVIRONMENT} ended success: "
                       "7 passed, 0 failed, 0 errors, 0 skipped."), message
    assert "unread" in (item.get_attribute("class") or "").split(), "the new notification is not marked unread"
    link = item.get_by_role("link", name="open")
    assert link.get_attribute("href") == f"/runs/{run_id}"
    assert _badge(page) is None, "the badge still counts after opening the inbox"
    assert page.locator("#inbox-link").get_attribute("aria-current") == "page"
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    lap("inbox")

    # The next poll of the badge keeps it cleared, the nav still marks the inbox as the current page, and a
    # keyboard user's focus on the link survives the swap.
    page.locator("#inbox-link").focus()
    with page.expect_response(lambda r: r.url.endswith("/inbox/badge"), timeout=5_000) as polled:
        pass  # the next poll comes within 3 s
    assert polled.value.ok
    page.wait_for_timeout(300)  # the swap
    assert _badge(page) is None
    assert page.locator("#inbox-link").get_attribute("aria-current") == "page", \
        "a badge poll dropped the nav's current-page mark on the inbox"
    assert page.evaluate("document.activeElement?.id") == "inbox-link", "a badge poll took the keyboard focus away"
    lap("polled on the inbox")

    # --- the link leads to the run; the badge stays cleared there -------------------------------------------
    with page.expect_navigation():
        link.click()
    page.wait_for_url(f"**/runs/{run_id}")
    assert page.locator("#run-status .badge").first.inner_text() == "success"
    assert _badge(page) is None
    assert page.console.errors == []
    print(f"timings (s since the test began): {timings}")
