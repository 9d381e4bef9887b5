"""What the event pages, the inbox and the nav's inbox badge show."""
from __future__ import annotations

from typing import Mapping

from flask import url_for

from .. import htmx
from ..domain.accounts import Principal
from ..domain.events import EventStatus
from ..pagination import Page
from . import services

BADGE_FAST, BADGE_AFTER = "3s", 20  # every 3 s; every 10 s after a minute without a change, 30 s after three


def listing(page: Page, filters: Mapping[str, str]) -> dict:
    """The list: its links keep the filters and the page size; it polls while an event on it is pending."""
    live = any(e.status == EventStatus.PENDING.value for e in page.items)
    return {"page": page, "filters": filters, "keep": page.links(filters), "live": live,
            "statuses": [s.value for s in EventStatus]}


def event(event_id: str, who: Principal | None) -> dict:
    row = services.get(event_id)
    return {"event": row, "inbox_link": bool(who and (who.is_admin or who.username == row.user_id))}


def inbox(who: Principal, user_id: str | None) -> dict:
    """Whose inbox (one's own; anyone's for an admin), and its notifications (opening one's own reads them)."""
    owner = services.inbox_owner(who, user_id)
    return {"user_id": owner, "items": services.open_inbox(owner, who)}


def badge(who: Principal | None, last: tuple[str, int] | None = None) -> dict:
    """The nav's inbox link: the unread count of the signed-in account, whether the inbox is the page shown,
    and its poll. It has no final state: from a full page it polls every 3 s afresh (``last`` None); each
    poll sends back the count it showed, and a count that stays the same slows it down."""
    unread = services.unread_count(who.username if who else None)
    poll = htmx.poll(last, str(unread), BADGE_FAST, BADGE_AFTER) if last else htmx.Poll.first(BADGE_FAST)
    return {"unread": unread, "poll": poll, "current": htmx.current_path() == url_for("events.inbox")}
