"""What every page's template may use: the nav, the role check, the error page's title."""
from __future__ import annotations

from flask import Flask, request, url_for

from . import auth
from .version import VERSION

NAV = (("migrations.index", "Migrations"), ("waves.index", "Waves"), ("workloads.index", "Workloads"),
       ("runs.index", "Test runs"), ("schedules.index", "Schedules"), ("testhistory.index", "Tests"),
       ("environments.index", "Environments"), ("events.index", "Events"))
NOT_IN_NAV = ("events.inbox", "events.badge")  # the inbox has its own link (the badge)

ERROR_TITLES = {400: "That request could not be understood", 403: "Not allowed", 404: "Not found",
                405: "Not allowed here", 409: "Not possible right now", 413: "Too large",
                422: "Please check your input"}


def can(role: str) -> bool:
    """May the signed-in user act with ``role``? (Hide what a lower role may not press.)"""
    who = auth.principal()
    return bool(who and who.can(role))


def nav() -> list[dict]:
    """The top bar's links, the current feature's marked."""
    here = request.endpoint or ""
    feature = here.split(".")[0] if here not in NOT_IN_NAV else None
    return [{"url": url_for(endpoint), "label": label, "current": endpoint.split(".")[0] == feature}
            for endpoint, label in NAV]


def error_title(status: int) -> str:
    return ERROR_TITLES.get(status, "Something went wrong")


def init_app(app: Flask) -> None:
    app.context_processor(lambda: {"can": can, "nav": nav, "error_title": error_title, "version": VERSION})
