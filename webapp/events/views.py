from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from .. import inputs
from ..auth import operator, principal, viewer
from ..htmx import page_or_fragment, seen
from . import bp, pages, services
from .forms import EventForm


@bp.get("/events/")
@viewer
def index():
    filters = inputs.event_filters(request.args)
    page = services.list_page(*inputs.page(request.args), filters)
    return page_or_fragment("events/index.html", "events/_table.html", **pages.listing(page, filters))


@bp.route("/events/new", methods=["GET", "POST"])
@operator
def create():
    form = EventForm(data={"user_id": principal().username})
    if row := form.submit(services.create):
        flash("Event recorded; a worker delivers it now.", "success")
        return redirect(url_for(".detail", event_id=row.id), 303)
    return render_template("events/new.html", form=form), form.status


@bp.get("/events/<event_id>")
@viewer
def detail(event_id: str):
    return page_or_fragment("events/detail.html", "events/_event.html", **pages.event(event_id, principal()))


@bp.get("/inbox")
@viewer
def inbox():
    return render_template("events/inbox.html", **pages.inbox(principal(), request.args.get("user_id")))


@bp.get("/inbox/badge")
@viewer
def badge():
    last = seen(request.args)
    return page_or_fragment(None, "events/_badge.html", inbox_badge=lambda: pages.badge(principal(), last))


@bp.app_context_processor
def inbox_badge():
    """The nav badge on every page: unread notifications of the signed-in account (read only if shown)."""
    return {"inbox_badge": lambda: pages.badge(principal())}
