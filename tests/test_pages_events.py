"""The event pages, the inbox and the nav badge, as a person uses them: without JavaScript, and with htmx."""
from __future__ import annotations

import html
import re

import pytest

from conftest import ADMIN, user_client

HX = {"HX-Request": "true"}


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def section(page: str, section_id: str) -> str:
    found = re.search(rf'<section id="{section_id}"[^>]*>.*?</section>', page, re.S)
    assert found, f"no section #{section_id}"
    return found.group(0)


def field_block(page: str, name: str) -> str:
    """The ``<div class="field ...">`` holding the input called ``name`` (its label, hint and errors)."""
    for block in re.findall(r'<div class="field[^"]*">.*?</div>', page, re.S):
        if f'name="{name}"' in block:
            return block
    raise AssertionError(f"no field {name}")


def badge(page: str) -> str:
    found = re.search(r'<a id="inbox-link"[^>]*>.*?</a>', page, re.S)
    assert found, "no #inbox-link"
    return found.group(0)


def unread_shown(page: str) -> int | None:
    found = re.search(r'<span class="count"[^>]*>(\d+)</span>', badge(page))
    return int(found.group(1)) if found else None


def create(client, user_id="alice", description="hello", status=None) -> dict:
    response = client.post("/api/v1/events", json={"user_id": user_id, "description": description})
    assert response.status_code == 201, response.json
    if status:
        response = client.patch(f"/api/v1/events/{response.json['id']}", json={"status": status})
        assert response.status_code == 200, response.json
    return response.json


def polls(fragment: str) -> bool:
    return 'hx-trigger="every 1s"' in fragment


# --- the list ----------------------------------------------------------------------------------------

def test_the_list_shows_events_newest_first_and_polls_only_while_one_is_pending(client, work):
    create(client, description="older message")
    create(client, user_id="bob", description="newer message")
    page = text(client.get("/events/"))
    table = section(page, "events-table")
    assert table.index("newer message") < table.index("older message")
    assert "bob" in table and "pending" in table and polls(table)
    work()  # both delivered: nothing left to watch
    table = section(text(client.get("/events/")), "events-table")
    assert "processed" in table and "pending" not in table and not polls(table)


def test_a_list_of_failed_events_does_not_poll(client):
    create(client, status="failed")
    table = section(text(client.get("/events/")), "events-table")
    assert "failed" in table and not polls(table)


def test_the_htmx_refresh_gets_only_the_table(client):
    create(client)
    fragment = text(client.get("/events/", headers=HX))
    assert fragment.lstrip().startswith('<section id="events-table"') and "<html" not in fragment
    assert polls(fragment)


def test_the_list_filters_by_status_and_user(client):
    create(client, user_id="alice", description="alice pending")
    create(client, user_id="bob", description="bob failed", status="failed")
    create(client, user_id="alice", description="alice processed", status="processed")
    table = section(text(client.get("/events/?status=failed")), "events-table")
    assert "bob failed" in table and "alice" not in table
    table = section(text(client.get("/events/?user_id=alice")), "events-table")
    assert "alice pending" in table and "alice processed" in table and "bob failed" not in table
    assert "No events match these filters" in text(client.get("/events/?user_id=nobody"))
    assert client.get("/events/?status=done").status_code == 422


def test_the_list_pages(client):
    for i in range(3):
        create(client, description=f"message {i}")
    page = text(client.get("/events/?per_page=2&page=2"))
    assert "message 0" in page and "message 2" not in page and "Page 2 of 2" in page


# --- the create form ---------------------------------------------------------------------------------

def test_the_form_shows_its_fields(client):
    page = text(client.get("/events/new"))
    assert 'name="user_id"' in page and 'name="description"' in page and 'maxlength="128"' in page


@pytest.mark.parametrize("form, bad", [
    ({"user_id": "", "description": "hi"}, {"user_id"}),
    ({"user_id": "alice", "description": ""}, {"description"}),
    ({"user_id": "", "description": ""}, {"user_id", "description"}),
    ({"user_id": "u" * 129, "description": "hi"}, {"user_id"}),
    ({"user_id": "alice", "description": "d" * 2001}, {"description"}),
])
def test_refused_input_is_422_with_the_errors_beside_the_fields(client, form, bad):
    response = client.post("/events/new", data={**form, "save": "Record event"})
    assert response.status_code == 422
    page = text(response)
    for name in ("user_id", "description"):
        block = field_block(page, name)
        if name in bad:
            assert "has-error" in block and f'id="{name}-error"' in block and 'aria-invalid="true"' in block
        else:
            assert "has-error" not in block
    typed = re.search(r'<textarea[^>]*name="description"[^>]*>(.*?)</textarea>', page, re.S).group(1)
    assert typed.strip() == form["description"]  # what was typed is kept
    assert re.search(r'<input[^>]*name="user_id"[^>]*>', page).group(0).count(f'value="{form["user_id"]}"') == 1
    assert client.get("/api/v1/events").json["total"] == 0


def test_a_recorded_event_redirects_to_its_page(client):
    response = client.post("/events/new", data={"user_id": "alice", "description": "From the form", "save": "Record"})
    assert response.status_code == 303
    (event,) = client.get("/api/v1/events").json["items"]
    assert response.headers["Location"].endswith(f"/events/{event['id']}")
    assert event["user_id"] == "alice" and event["description"] == "From the form" and event["source"] == "api"
    page = text(client.get(response.headers["Location"]))
    assert "From the form" in page and "Event recorded" in page


def test_the_form_offers_the_signed_in_user(client, as_role):
    def offered(page: str, user: str):
        return re.search(rf'name="user_id"[^>]*value="{user}"|value="{user}"[^>]*name="user_id"', page)

    assert offered(text(client.get("/events/new")), ADMIN)
    carol = as_role("operator", "carol")
    carol.get("/inbox?user_id=carol")
    page = text(carol.get("/events/new"))
    assert offered(page, "carol") and not offered(page, ADMIN)


# --- the detail page ---------------------------------------------------------------------------------

def test_the_detail_page_polls_while_pending_and_stops_when_delivered(client, work):
    event = create(client, user_id="dave", description="Line one\nline two")
    page = text(client.get(f"/events/{event['id']}"))
    status = section(page, "event-status")
    assert polls(status) and "pending" in status and "dave" in status and "Line one" in status
    assert event["id"] in page
    fragment = text(client.get(f"/events/{event['id']}", headers=HX))
    assert fragment.lstrip().startswith('<section id="event-status"') and "<html" not in fragment
    work()
    status = section(text(client.get(f"/events/{event['id']}", headers=HX)), "event-status")
    assert "processed" in status and not polls(status)
    assert "/inbox?user_id=dave" in status


def test_the_detail_page_of_a_failed_event_shows_why(app, client):
    from webapp.extensions import db
    from webapp.models import EventRow

    event = create(client, status="failed")
    with app.app_context():
        db.session.get(EventRow, event["id"]).last_error = "webhook failed after 3 attempts: HTTP 500"
        db.session.commit()
    status = section(text(client.get(f"/events/{event['id']}")), "event-status")
    assert "webhook failed after 3 attempts: HTTP 500" in status and not polls(status)


def test_the_detail_page_links_to_the_related_page(client, work):
    from conftest import make_migration, make_workload

    migration = make_migration(client, make_workload(client)["id"])
    erin = user_client(client.application, "erin")
    assert erin.post(f"/api/v1/migrations/{migration['id']}/run").status_code == 202  # erin is told
    work()
    (event,) = client.get("/api/v1/events?user_id=erin").json["items"]
    page = text(client.get(f"/events/{event['id']}"))
    assert f'href="/migrations/{migration["id"]}"' in page


@pytest.mark.parametrize("event_id", ["6f1c2d4e-1111-4a2b-9c3d-000000000000", "not-a-uuid", "1"])
def test_an_unknown_event_page_is_404(client, event_id):
    response = client.get(f"/events/{event_id}")
    assert response.status_code == 404 and "<html" in text(response)


# --- the inbox and the nav badge ---------------------------------------------------------------------

def test_the_inbox_lists_delivered_notifications_newest_first_and_marks_them_read(client, work):
    for description in ("first news", "second news", "third news"):
        create(client, user_id="frank", description=description)
    create(client, user_id="someone-else", description="not for frank")
    waiting = text(client.get("/inbox?user_id=frank"))
    assert "No notifications for frank" in waiting  # not delivered yet: not in the inbox
    work()
    peek = text(client.get("/inbox?user_id=frank"))  # an admin looking in leaves them unread for frank
    assert "Inbox of frank" in peek and "not for frank" not in peek
    frank = user_client(client.application, "frank", "viewer")
    page = text(frank.get("/inbox"))
    assert "Inbox of frank" in page and "not for frank" not in page
    items = re.findall(r'<li class="([^"]*)">.*?<span class="message">(.*?)</span>', page, re.S)
    assert [m for _, m in items] == ["third news", "second news", "first news"]
    assert all(c == "unread" for c, _ in items)
    assert unread_shown(page) is None  # opening the inbox read them
    again = re.findall(r'<li class="([^"]*)">', text(frank.get("/inbox")))
    assert again == ["", "", ""]


def test_the_inbox_is_the_signed_in_user_s_own(client, as_role, work):
    create(client, user_id="gina", description="for gina")
    create(client, user_id="hugo", description="for hugo")
    work()
    gina = as_role("viewer", "gina")
    page = text(gina.get("/inbox"))
    assert "Inbox of gina" in page and "for gina" in page and "for hugo" not in page
    assert 'name="user_id"' not in page  # no other inbox to open
    assert "Inbox of gina" in text(gina.get("/inbox?user_id=gina"))  # naming oneself is fine
    for other in ("hugo", ADMIN):
        response = gina.get(f"/inbox?user_id={other}")
        assert response.status_code == 403 and "for hugo" not in text(response)
    assert "Inbox of admin" in text(client.get("/inbox"))
    page = text(client.get("/inbox?user_id=hugo"))  # an admin may open anyone's
    assert "Inbox of hugo" in page and "for hugo" in page and 'value="hugo"' in page


def test_the_nav_badge_counts_unread_notifications_of_the_signed_in_user(client, as_role, work):
    hana = as_role("viewer", "hana")
    assert unread_shown(text(hana.get("/events/"))) is None  # nothing yet
    create(client, user_id="hana", description="one")
    create(client, user_id="hana", description="two")
    create(client, user_id="ivan", description="not hers")
    assert unread_shown(text(hana.get("/events/"))) is None  # pending events are not in the inbox yet
    work()
    assert unread_shown(text(client.get("/events/"))) is None  # the admin's own inbox is empty
    page = text(hana.get("/events/"))
    assert unread_shown(page) == 2
    link = badge(page)
    assert 'href="/inbox"' in link and 'hx-get="/inbox/badge"' in link and 'hx-trigger="every 3s"' in link
    fragment = text(hana.get("/inbox/badge", headers=HX))
    assert fragment.strip().startswith('<a id="inbox-link"') and "<html" not in fragment
    assert unread_shown(fragment) == 2 and 'hx-trigger="every 3s"' in fragment
    hana.get("/inbox")  # the signed-in user reads them
    assert unread_shown(text(hana.get("/inbox/badge"))) is None
    create(client, user_id="hana", description="three")
    work()
    assert unread_shown(text(hana.get("/inbox/badge"))) == 1


def test_another_session_has_its_own_badge(app, client, as_role, work):
    hana = as_role("viewer", "hana")
    create(client, user_id="hana")
    work()
    other = as_role("viewer", "ivan")
    assert unread_shown(text(other.get("/inbox/badge"))) is None
    other.get("/inbox")
    assert unread_shown(text(other.get("/inbox/badge"))) is None
    assert unread_shown(text(hana.get("/inbox/badge"))) == 1
    assert unread_shown(text(client.get("/inbox/badge"))) is None
    assert app.test_client().get("/inbox/badge").status_code in (302, 204)  # nobody signed in: no badge


# --- paging a filtered list ----------------------------------------------------------------------------

def test_the_pages_of_a_filtered_list_keep_the_filters(client):
    """A bug fixed: ``/events/?user_id=bob`` → "Older →" went to ``/events/?page=2``, every event again."""
    for i in range(3):
        create(client, user_id="alice", description=f"for alice {i}")
        create(client, user_id="bob", description=f"for bob {i}")
    page = text(client.get("/events/?user_id=bob&per_page=2"))
    older = re.search(r'href="([^"]+)" rel="next"', page).group(1)
    assert "user_id=bob" in older and "per_page=2" in older and "page=2" in older
    second = text(client.get(older))
    table = section(second, "events-table")
    assert "for bob 0" in table and "alice" not in table
    newer = re.search(r'href="([^"]+)" rel="prev"', second).group(1)
    assert "user_id=bob" in newer and "per_page=2" in newer
    live = re.search(r'class="refresh" href="([^"]+)"', section(page, "events-table")).group(1)
    assert "user_id=bob" in live and "per_page=2" in live  # the live refresh stays on the same filtered page
