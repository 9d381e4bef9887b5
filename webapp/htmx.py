"""One place that decides between the whole page and the fragment an htmx request asked for, and
reads what else htmx tells the server (the page a request came from, what a poller last saw)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from flask import Response, flash, g, make_response, redirect, render_template, request, session
from flask_wtf.csrf import generate_csrf


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def page_or_fragment(full: str | Callable[[], Any] | None, fragment: str, /, http_status: int = 200,
                     **context) -> Any:
    """htmx asked for ``fragment``: render it with ``context``. A plain browser gets ``full``: the page's
    template, which includes the fragment, so both paths render identical markup; or, after an action,
    a function that answers it (a redirect, see ``back_to``); or None for a URL that only a poller asks
    for (a plain browser then gets the fragment too)."""
    if callable(full) and not is_htmx():
        return full()
    return render_template(fragment if is_htmx() or full is None else full, **context), http_status


def back_to(url: str, refusal: str | None, done: str) -> Response:
    """After an action, a plain browser goes back (303) and is told how it went."""
    flash(refusal or done, "error" if refusal else "success")
    return redirect(url, 303)


def current_path() -> str:
    """The path of the page the browser shows: for an htmx request the page it came from (HX-Current-URL)."""
    return urlsplit(request.headers.get("HX-Current-URL") or "").path if is_htmx() else request.path


def polled_by_its_own_page() -> bool:
    """An htmx request from the page at this very URL (its own poll), not from another page that embeds it."""
    return is_htmx() and current_path() == request.path


# --- polls that mostly see what they saw (conditional requests) -------------------------------------------

def unchanged_or(version: Callable[[], str | None], render: Callable[[], Any]) -> Any:
    """An htmx poll of a fragment whose ``version()`` (what it shows, read cheaply) the browser already holds: its
    cache sends the ETag back in If-None-Match on its own, and gets ``304 Not Modified``, nothing else read or
    rendered (the browser hands htmx the body it kept: the same markup). Otherwise ``render()``, with that ETag.
    A plain browser, or ``version()`` None: ``render()`` as before, no ETag. The access check ran already
    (``auth.guard``, before every view): a refused caller never gets here, so never gets a 304."""
    shows = version() if is_htmx() else None
    if shows is None:
        return render()
    etag = _etag(shows)
    response = Response(status=304) if request.if_none_match.contains_weak(etag) else make_response(render())
    response.set_etag(etag, weak=True)  # weak: the same state, though each render signs its CSRF token anew
    response.headers["Cache-Control"] = "private, no-cache"  # kept by the browser only, asked again every time
    response.vary.add("Cookie")
    return response


def _etag(version: str) -> str:
    """The fragment's ETag: its ``version`` and who asks (their role's buttons, their session's CSRF token)."""
    who = g.get("principal")
    seen_by = (who.username, who.role.value) if who else ("", "")
    if "csrf_token" not in session:
        generate_csrf()  # the session's CSRF secret, made now as the render would make it: the ETag covers it
    mine = (session.get("sid") or "", session["csrf_token"])
    return hashlib.sha256(repr((version, seen_by, mine)).encode()).hexdigest()[:32]


# --- polls without a final state (the environment grid, the inbox badge) ---------------------------------

SLOWER = ("10s", "30s")


@dataclass(frozen=True)
class Poll:
    """The trigger of a partial that polls without end. It polls ``fast`` while what it shows changes;
    once that stayed the same for ``after`` polls, every 10 s; after ``3 * after``, every 30 s. The partial
    sends back what it last saw in its URL (``args``): the server needs no state of its own."""

    version: str
    quiet: int  # polls in a row that saw no change
    every: str

    @property
    def args(self) -> dict[str, str | int]:
        """For the poller's URL (none on its first poll from a full page)."""
        return {"seen": self.version, "quiet": self.quiet} if self.version else {}

    @classmethod
    def first(cls, fast: str) -> "Poll":
        """From a full page: its first poll starts afresh (its URL carries nothing)."""
        return cls("", 0, fast)


def seen(args: Mapping[str, str]) -> tuple[str, int]:
    """What a poller last saw, from its URL: ``?seen=<version>&quiet=<polls without a change>``."""
    quiet = args.get("quiet", "")
    return args.get("seen", ""), int(quiet) if quiet.isascii() and quiet.isdigit() and len(quiet) < 6 else 0


def poll(last: tuple[str, int], version: str, fast: str, after: int) -> Poll:
    """The next trigger of a poller that last saw ``last`` and now shows ``version``."""
    before, quiet = last
    quiet = quiet + 1 if before and before == version else 0
    every = fast if quiet < after else SLOWER[0] if quiet < 3 * after else SLOWER[1]
    return Poll(version, quiet, every)


def download(body: str, mimetype: str, filename: str) -> Response:
    """A text file to save (a run's log, its JUnit report), for the pages and the API alike."""
    return Response(body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def add_vary(response: Response) -> Response:
    response.vary.add("HX-Request")
    return response
