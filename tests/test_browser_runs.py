"""A real browser (Playwright driving Debian's Chromium) against the real all-in-one process (WORKERS=2):
test runs as an ops/QA user sees them.

Signed in (the /login form) as the operator ``qa-browser``, whose name every run carries. Tab 1 starts run A (the slow sample, ~6 s of progress lines) on environment 42. Tab 2 opens New run
(it shows the signed-in account), uploads a test file into a new directory through the upload panel (the file
picker is refreshed out of band, without a page load, with the upload selected) and starts run B on
the same environment: B waits "Position 1 in the queue" and the environments grid shows 42 busy with 1 waiting.
Both logs tail live (the <pre> grows without a reload, the log box stays pinned to its end), B starts
when A is done, both end in success with their results, and every poll stops. No console error may
be logged (a CSP violation would be one).

Each detail page carries a recorder (a MutationObserver installed from the test, not by the app) that
notes every change of the state badge and of the log, so nothing is missed while the test is busy in
another tab.
"""
from __future__ import annotations

import re
import time
from datetime import datetime

import pytest

from e2e import ARTIFACTS, Http, serve, sign_in, wait_for
from test_browser import Console, browser  # noqa: F401  (browser: the module-scoped fixture, same skip/fail rule)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT_MS = 15_000
RUN_TIMEOUT = 30  # s for a run to end once awaited; a quiet machine needs about 5 (2 CPUs shared with others: 15)
ENVIRONMENT = "42"
USERNAME = "qa-browser"
PASSWORD = "Qa-Browser-Pa55!"
SLOW_SAMPLE = "sample_tests/test_slow_progress.py"
UPLOAD_DIR = "smoke"
UPLOAD_NAME = "test_smoke_checkout.py"
UPLOADED = f"uploads/{UPLOAD_DIR}/{UPLOAD_NAME}"
SMOKE_STEPS = 24  # one line every 0.125 s for 3 s: enough lines to overflow the log box (32rem)
SMOKE_TEST = f'''"""Checkout smoke test, uploaded through the browser."""
import time


def test_checkout_smoke(capsys):
    with capsys.disabled():
        print(flush=True)
    for step in range(1, {SMOKE_STEPS} + 1):
        time.sleep(0.125)
        with capsys.disabled():
            print(f"  smoke: checkout step {{step}}/{SMOKE_STEPS} ok", flush=True)
    assert step == {SMOKE_STEPS}
'''.encode()
QUEUED_SCREENSHOT = ARTIFACTS / "browser-run-queued.png"
LOG_SCREENSHOT = ARTIFACTS / "browser-run-log.png"
RUN_URL = re.compile(r"/runs/(\d+)$")

# Installed on a run's detail page: a marker that a page load would drop, and a record of every change
# of the state badge and of the log (length, progress lines, and whether the log box shows its end).
RECORDER = """(pattern) => {
    window.__e2eMarker = 'same-document';
    const progress = new RegExp(pattern, 'g');
    const rec = window.__e2eRec = {states: [], log: []};
    const box = document.querySelector('.log-scroll'), pre = document.querySelector('#run-log');
    const snap = () => {
        const status = document.querySelector('#run-status');
        const state = status?.querySelector('.badge')?.textContent.trim();
        const line = status?.querySelector('.state')?.textContent.replace(/\\s+/g, ' ').trim();
        if (line !== rec.states.at(-1)?.line) rec.states.push({t: performance.now(), state, line});
        const text = pre.textContent;
        if (text.length !== rec.log.at(-1)?.len) {
            const b = box.getBoundingClientRect(), p = pre.getBoundingClientRect();
            rec.log.push({t: performance.now(), len: text.length, progress: (text.match(progress) || []).length,
                          state, overflow: box.scrollHeight > box.clientHeight + 1,
                          atBottom: Math.abs(p.bottom - b.bottom) <= 2, scrollTop: box.scrollTop});
        }
    };
    new MutationObserver(snap).observe(document.querySelector('main'), {childList: true, subtree: true, characterData: true});
    snap();
}"""


@pytest.fixture(scope="module")
def server(browser, tmp_path_factory):  # noqa: F811
    yield from serve(tmp_path_factory, "browser-runs", users=[(USERNAME, PASSWORD, "operator")])


@pytest.fixture
def context(browser, server):  # noqa: F811
    """Signed in as ``USERNAME``: every tab of the context shares the session cookie."""
    context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    sign_in(page, USERNAME, PASSWORD)
    page.close()
    yield context
    context.close()


def shown_username(page) -> str:
    """Who the New run form says the run is started by: the signed-in account (shown, not typed)."""
    shown = page.locator("#run-username")
    assert page.locator("form #username").count() == 0, "the run form still has a username field to type in"
    return shown.inner_text().strip()


def _new_page(context):
    page = context.new_page()
    page.console = Console(page)
    page.requests = []
    page.on("request", lambda r: page.requests.append((time.monotonic(), r.url)))
    return page


def _same_document(page) -> bool:
    return page.evaluate("window.__e2eMarker") == "same-document"


def _start_run(page) -> int:
    with page.expect_navigation():
        page.get_by_role("button", name="Start run").click()
    page.wait_for_url(RUN_URL)
    return int(RUN_URL.search(page.url).group(1))


def _record(page, progress_pattern: str) -> None:
    page.locator("#run-log").wait_for(state="attached")
    page.evaluate(RECORDER, progress_pattern)


def _recorded(page) -> dict:
    return page.evaluate("window.__e2eRec")


def _wait_final(page, timeout: float) -> dict:
    _until(page, "() => ['success', 'failed', 'error', 'cancelled'].includes("
                 "document.querySelector('#run-status .badge')?.textContent.trim())", timeout, "the run to end")
    _until(page, "() => document.querySelector('#log-tail') && !document.querySelector('#log-tail[hx-get]')", 10,
           "the end of the log")
    return _recorded(page)


def _until(page, predicate: str, timeout: float, message: str):
    """Poll a JS predicate from Python (wait_for_function evaluates a string: the CSP forbids it)."""
    return wait_for(lambda: page.evaluate(predicate), timeout, interval=0.05, message=f"{message} on {page.url}")


def _check_tail(label: str, rec: dict, pattern_count: int) -> None:
    """The log grew live (at least three increasing lengths while running, progress lines one by one),
    and the box stayed pinned to its end whenever it overflowed."""
    lengths = [r["len"] for r in rec["log"]]
    assert lengths == sorted(lengths), f"{label}: the log shrank: {lengths}"
    live = [r for r in rec["log"] if r["state"] == "running"]
    assert len({r["len"] for r in live}) >= 3, f"{label}: the log did not grow live while running: {rec['log']}"
    counts = sorted({r["progress"] for r in rec["log"]})
    assert counts[-1] == pattern_count, f"{label}: not every progress line arrived: {counts}"
    assert len([c for c in counts if 0 < c < pattern_count]) >= 2, \
        f"{label}: the progress lines did not appear incrementally: {counts}"
    stuck = [r for r in rec["log"] if not r["atBottom"]]
    assert stuck == [], f"{label}: the log box did not follow the end of the log: {stuck}"


def test_upload_queue_and_watch_two_runs_tail_their_logs(context, server):
    started = time.monotonic()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        timings[name] = round(time.monotonic() - started, 1)

    # --- tab 1: run A, the slow sample, on environment 42 --------------------------------------------
    a_page = _new_page(context)
    a_page.goto("/runs/")
    a_page.get_by_role("link", name="New run").click()
    a_page.wait_for_url("**/runs/new")
    assert shown_username(a_page) == USERNAME, "the run form does not show the signed-in account"
    a_page.select_option("#environment_id", ENVIRONMENT)
    a_page.select_option("#test_files", SLOW_SAMPLE)
    run_a = _start_run(a_page)
    _record(a_page, r"progress: batch \d+/12")
    lap("A started")

    # --- tab 2: New run, as the same account; upload into a new directory without a page load -------
    b_page = _new_page(context)
    b_page.goto("/runs/new")
    assert shown_username(b_page) == USERNAME, "the second tab's run form does not show the signed-in account"
    assert b_page.locator(f'#test_files option[value="{UPLOADED}"]').count() == 0
    b_page.evaluate("window.__e2eMarker = 'same-document'")
    b_page.select_option("#environment_id", ENVIRONMENT)
    assert "busy" in b_page.locator("#environment_id option:checked").inner_text()
    b_page.set_input_files("#file", files=[{"name": UPLOAD_NAME, "mimeType": "text/x-python", "buffer": SMOKE_TEST}])
    b_page.fill("#directory", UPLOAD_DIR)
    b_page.get_by_role("button", name="Upload").click()
    option = b_page.locator(f'#test_files option[value="{UPLOADED}"]')
    option.wait_for(state="attached")
    assert _same_document(b_page), "uploading reloaded the page instead of swapping the panel and the picker"
    assert b_page.locator("#upload-panel .flash-success").inner_text().startswith(f"Uploaded {UPLOADED}")
    assert option.inner_text() == f"{UPLOAD_NAME} (uploaded)"
    assert option.evaluate("o => o.parentElement.label") == f"uploads/{UPLOAD_DIR}/"
    assert b_page.eval_on_selector("#test_files", "s => [...s.selectedOptions].map(o => o.value)") == [UPLOADED]
    assert b_page.locator("#file-picker").count() == 1, "the out-of-band swap left a second picker"
    # What was chosen in the run form survived the upload.
    assert shown_username(b_page) == USERNAME
    assert b_page.input_value("#environment_id") == ENVIRONMENT
    lap("uploaded")

    run_b = _start_run(b_page)
    assert run_b > run_a
    _record(b_page, r"checkout step \d+/%d ok" % SMOKE_STEPS)
    status_b = b_page.locator("#run-status")
    assert status_b.locator(".badge").inner_text() == "queued", \
        f"B should wait for A (is A already done? {_recorded(a_page)['states']})"
    assert re.search(rf"Position 1 in the queue for environment {ENVIRONMENT}\b",
                     status_b.locator(".state").inner_text())
    assert b_page.locator(".log-empty").inner_text().startswith(f"Waiting for its turn on environment {ENVIRONMENT}")
    QUEUED_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    b_page.screenshot(path=str(QUEUED_SCREENSHOT), full_page=True)
    lap("B queued")

    # --- the environments grid: 42 busy with run A, 1 waiting ------------------------------------------
    grid = _new_page(context)
    grid.goto("/environments/")
    cell = grid.locator("#environment-grid li.cell").filter(
        has=grid.locator("strong").get_by_text(ENVIRONMENT, exact=True))
    assert cell.count() == 1
    assert "busy" in cell.get_attribute("class").split()
    assert cell.locator(".cell-state").inner_text().startswith(f"run #{run_a}")
    assert cell.locator(".cell-queue").inner_text() == "1 waiting"
    assert grid.console.errors == []
    grid.close()
    lap("grid checked")

    # --- A's live log, mid-run --------------------------------------------------------------------------
    _until(a_page, "() => (document.querySelector('#run-log').textContent.match(/progress: batch/g) || []).length >= 4",
           RUN_TIMEOUT, "four progress lines of A")
    mid = _recorded(a_page)
    assert mid["log"][-1]["state"] == "running" and mid["log"][-1]["progress"] < 12, \
        f"A was not mid-run for the screenshot: {mid['log'][-1]}"
    a_page.screenshot(path=str(LOG_SCREENSHOT), full_page=True)
    lap("A screenshot")

    # --- A ends in success; then B starts, its page follows without a reload ------------------------------
    rec_a = _wait_final(a_page, timeout=RUN_TIMEOUT)
    lap("A done")
    rec_b = _wait_final(b_page, timeout=RUN_TIMEOUT)
    lap("B done")
    for page in (a_page, b_page):
        assert _same_document(page), f"{page.url} was reloaded while its run went on"

    states_a = [s["state"] for s in rec_a["states"]]
    states_b = [s["state"] for s in rec_b["states"]]
    assert states_a[-1] == "success" and "running" in states_a, states_a
    assert states_b[0] == "queued" and "running" in states_b and states_b[-1] == "success", states_b
    assert "Position 1 in the queue" in rec_b["states"][0]["line"]
    api = Http(server.url)  # the API takes a bearer token, never the browser's session cookie
    api.get_token(USERNAME, PASSWORD)
    api_a, api_b = (api.get(f"/api/v1/runs/{run_id}").json() for run_id in (run_a, run_b))
    assert api_a["username"] == api_b["username"] == USERNAME
    assert datetime.fromisoformat(api_a["finished_at"]) <= datetime.fromisoformat(api_b["started_at"]), \
        f"B started before A had finished: {api_a} {api_b}"

    _check_tail("A", rec_a, 12)
    _check_tail("B", rec_b, SMOKE_STEPS)
    assert any(r["overflow"] for r in rec_b["log"]), "B's log never overflowed the box: the follow check proved nothing"

    # The text appended piece by piece is exactly the whole log (no chunk lost or repeated).
    for page, run_id, last_line in ((a_page, run_a, "batch 12/12, 3000 records imported"),
                                    (b_page, run_b, f"checkout step {SMOKE_STEPS}/{SMOKE_STEPS} ok")):
        shown = page.locator("#run-log").text_content()
        download = page.locator("#log-tail a").get_attribute("href")
        full = page.request.get(download)
        assert full.ok
        assert shown == full.text(), f"run #{run_id}: the live log differs from log.txt"
        assert last_line in shown and "1 passed" in shown
        assert page.locator("#log-tail").inner_text().startswith("End of log.")
        assert not page.locator(".log-empty").is_visible(), "the 'no output yet' line stayed under the log"

    # --- results, and every poll has stopped --------------------------------------------------------------
    for page, nodeid in ((a_page, f"{SLOW_SAMPLE}::test_customer_import_reports_progress"),
                         (b_page, f"{UPLOADED}::test_checkout_smoke")):
        status = page.locator("#run-status")
        assert status.locator(".state .badge").inner_text() == "success"
        rows = status.locator("table.results tbody tr")
        assert rows.count() == 1
        assert rows.locator("code").inner_text() == nodeid
        assert rows.locator(".badge").inner_text() == "passed"
        assert "1 passed" in status.inner_text()
        assert page.locator("#run-status [hx-trigger]").count() == 0
        assert page.locator("#log-tail").evaluate("e => e.hasAttribute('hx-trigger') || e.hasAttribute('hx-get')") is False
    done_at = time.monotonic()
    b_page.wait_for_timeout(1600)  # three log-polling periods, more than one status period
    for page, run_id in ((a_page, run_a), (b_page, run_b)):
        polls = [url for _, url in page.requests if re.search(rf"/runs/{run_id}/log\?offset=\d+$", url)]
        assert len(polls) >= 3, f"run #{run_id}: the log was not tailed by polling: {polls}"
        late = [url for at, url in page.requests if at > done_at + 0.2 and f"/runs/{run_id}" in url]
        assert late == [], f"run #{run_id}: still polling after success: {late}"
    lap("polling stopped")

    assert a_page.console.errors == [] and b_page.console.errors == []
    print(f"\ntimings (s since the test began): {timings}")
