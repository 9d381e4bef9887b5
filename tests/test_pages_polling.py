"""Pollers without a final state (the environment grid, the nav's inbox badge) slow down while what they show
stays the same, and speed up again when it changes. The server keeps no state for it: each answer's URL
carries the version it showed and how many polls in a row saw no change (``?seen=&quiet=``)."""
from __future__ import annotations

import html
import re

from webapp import htmx
from webapp.environments.pages import GRID_AFTER
from webapp.events.pages import BADGE_AFTER

HX = {"HX-Request": "true"}


def poller(fragment: str, element_id: str) -> tuple[str, str]:
    """The poll URL and interval of the element ``element_id`` (or of the live link inside it)."""
    found = re.search(rf'id="{element_id}".*?hx-get="([^"]+)"\s+hx-trigger="every (\w+)"', fragment, re.S)
    assert found, fragment[:400]
    return html.unescape(found.group(1)), found.group(2)


def follow(client, url: str, element_id: str, times: int) -> list[str]:
    """Poll ``times`` times as htmx would (each time the URL the last answer gave); the intervals seen."""
    seen = []
    for _ in range(times):
        url, every = poller(client.get(url, headers=HX).get_data(as_text=True), element_id)
        seen.append(every)
    return seen


def test_the_poll_rule():
    first = htmx.poll(("", 0), "v1", "2s", 3)
    assert (first.quiet, first.every, first.args) == (0, "2s", {"seen": "v1", "quiet": 0})
    assert htmx.poll(("v1", 2), "v1", "2s", 3).every == "10s"  # the third poll without a change
    assert htmx.poll(("v1", 8), "v1", "2s", 3).every == "30s"
    assert htmx.poll(("v1", 40), "v2", "2s", 3) == htmx.Poll("v2", 0, "2s")  # a change: fast again
    assert htmx.seen({"seen": "v1", "quiet": "7"}) == ("v1", 7)
    assert htmx.seen({"quiet": "x"}) == ("", 0) and htmx.seen({"quiet": "9" * 40}) == ("", 0)
    assert htmx.Poll.first("3s").args == {}


def test_the_grid_slows_down_while_nothing_changes_and_speeds_up_on_a_change(client):
    page = client.get("/environments/").get_data(as_text=True)
    url, every = poller(page, "environment-grid")
    assert every == "10s" and "seen=" in url  # all idle: every 10 s
    intervals = follow(client, url, "environment-grid", 3 * GRID_AFTER + 1)
    assert intervals[GRID_AFTER - 2] == "10s" and intervals[-1] == "30s"
    url, _ = poller(client.get(url, headers=HX).get_data(as_text=True), "environment-grid")
    client.post("/api/v1/runs", json={"environment_id": 5, "test_files": ["sample_tests/test_passing.py"]})
    assert poller(client.get(url, headers=HX).get_data(as_text=True), "environment-grid")[1] == "2s"  # busy
    intervals = follow(client, url, "environment-grid", GRID_AFTER + 1)
    assert intervals[0] == "2s" and intervals[-1] == "10s"  # busy but unchanged: slower too


def test_the_badge_slows_down_while_its_count_stays_and_speeds_up_when_it_changes(client, work):
    page = client.get("/events/").get_data(as_text=True)
    url, every = poller(page, "inbox-link")
    assert (url, every) == ("/inbox/badge", "3s")  # a full page: a fresh start, every 3 s
    intervals = follow(client, url, "inbox-link", BADGE_AFTER + 1)
    assert set(intervals[:BADGE_AFTER]) == {"3s"} and intervals[-1] == "10s"
    fragment = client.get(url, headers=HX).get_data(as_text=True)
    url, _ = poller(fragment, "inbox-link")
    client.post("/api/v1/events", json={"user_id": "admin", "description": "hello"})
    work()  # delivered: one unread
    fragment = client.get(url, headers=HX).get_data(as_text=True)
    assert poller(fragment, "inbox-link")[1] == "3s" and 'aria-label="1 unread"' in fragment


def test_the_badge_marks_the_inbox_as_the_current_page_from_the_page_it_polls_from(client):
    on_inbox = client.get("/inbox/badge", headers={**HX, "HX-Current-URL": "http://localhost/inbox?user_id=admin#x"})
    assert 'aria-current="page"' in on_inbox.get_data(as_text=True)
    elsewhere = client.get("/inbox/badge", headers={**HX, "HX-Current-URL": "http://localhost/runs/inbox"})
    assert 'aria-current="page"' not in elsewhere.get_data(as_text=True)
    assert 'aria-current="page"' not in client.get("/inbox/badge").get_data(as_text=True)


def test_the_pages_load_one_external_script_that_pauses_polls_in_a_hidden_tab(client):
    page = client.get("/environments/").get_data(as_text=True)
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
    assert [re.search(r'src="([^"]+)"', a).group(1) for a, _ in scripts] == ["/static/htmx.min.js", "/static/app.js"]
    assert all(body.strip() == "" for _, body in scripts)
    script = client.get("/static/app.js")
    assert script.status_code == 200 and "javascript" in script.mimetype
    source = script.get_data(as_text=True)
    assert "htmx:beforeRequest" in source and "document.hidden" in source and "visibilitychange" in source
