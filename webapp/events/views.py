from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from .. import inputs
from ..htmx import page_or_fragment
from ..auth import operator, principal, viewer
from . import bp, services
from .forms import EventForm


@bp.get("/events/")
@viewer
def index():
    filters = inputs.event_filters(request.args)
    page = services.list_page(*inputs.page(request.args), filters)
    return page_or_fragment("events/index.html", "events/_table.html", page=page, filters=filters)


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
    return page_or_fragment("events/detail.html", "events/_event.html", event=services.get(event_id))


@bp.get("/inbox")
@viewer
def inbox():
    user_id = services.inbox_owner(principal(), request.args.get("user_id"))
    return render_template("events/inbox.html", user_id=user_id, items=services.open_inbox(user_id, principal()))


@bp.get("/inbox/badge")
@viewer
def badge():
    return render_template("events/_badge.html")


@bp.app_context_processor
def inbox_badge():
    """The nav badge: unread notifications of the signed-in account."""
    user_id = principal().username if principal() else None
    return {"inbox_user": user_id, "inbox_unread": lambda: services.unread_count(user_id)}
