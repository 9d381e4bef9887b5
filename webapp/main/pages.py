"""What the overview shows: the live "now" panel (polled, slowing down while nothing changes) and the
charts of the last days (the whole page only)."""
from __future__ import annotations

import hashlib

from .. import charts, htmx
from . import services

NOW_FAST, NOW_AFTER = "5s", 12  # every 5 s; after 12 unchanged answers every 10 s, after 36 every 30 s


def overview(last: tuple[str, int] = ("", 0)) -> dict:
    """``last``: what the polling panel showed (``?seen=&quiet=``, see ``htmx.poll``)."""
    figures = services.now()
    version = hashlib.blake2b(repr(sorted(figures.items())).encode(), digest_size=8).hexdigest()
    return {"overview": services.overview(), "now": figures, "poll": htmx.poll(last, version, NOW_FAST, NOW_AFTER),
            "charts": _charts}


def _charts() -> dict:
    past = services.history()
    labels = [d.strftime("%m-%d") for d in past["days"]]
    return {"runs": charts.stacked_bars(labels, list(past["runs"].items())),
            "migrations": charts.stacked_bars(labels, list(past["migrations"].items())),
            "days": len(labels)}
