"""The tests list's and a test's history's query strings → checked values (the pages and the API alike)."""
from __future__ import annotations

from typing import Mapping

from ..domain import runs
from ..domain.errors import ValidationError
from ..domain.testhistory import HISTORY_LIMIT, MAX_HISTORY_LIMIT, SORTS
from .errors import Errors

TEST_FILTERS = ("q", "flaky", "sort")
Q_MAX = 200
BOOLEANS = {"true": True, "false": False}


def test_filters(args: Mapping[str, str]) -> dict:
    """``?q=`` (a part of the nodeid, any case), ``?flaky=true|false``, ``?sort=nodeid|flaky|slowest|failing``."""
    errors, filters = Errors(), {}
    q = (args.get("q") or "").strip()
    if q:
        if len(q) > Q_MAX or "\x00" in q:
            errors.add("q", f"Search for at most {Q_MAX} characters (no NUL).")
        else:
            filters["q"] = q
    flaky = (args.get("flaky") or "").strip().lower()
    if flaky:
        if flaky not in BOOLEANS:
            errors.add("flaky", "flaky must be true or false.")
        else:
            filters["flaky"] = BOOLEANS[flaky]
    sort = (args.get("sort") or "").strip()
    if sort:
        if sort not in SORTS:
            errors.add("sort", "Unknown sort: use " + ", ".join(SORTS) + ".")
        else:
            filters["sort"] = sort
    _raise(errors)
    return filters


def history_args(args: Mapping[str, str]) -> dict:
    """``?environment_id=`` (optional) and ``?limit=`` (1..500, default 30)."""
    errors, found = Errors(), {"environment_id": None, "limit": HISTORY_LIMIT}
    if (args.get("environment_id") or "").strip():
        try:
            found["environment_id"] = runs.check_environment_id(args["environment_id"])
        except ValidationError as exc:
            errors.absorb(exc)
    raw = (args.get("limit") or "").strip()
    if raw:
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 4 and 1 <= int(raw) <= MAX_HISTORY_LIMIT):
            errors.add("limit", f"limit must be a whole number from 1 to {MAX_HISTORY_LIMIT}.")
        else:
            found["limit"] = int(raw)
    _raise(errors)
    return found


def _raise(errors: Errors) -> None:
    """Refuse what was collected; one message is the error's own message (the page shows it)."""
    messages = [m for found in errors.fields.values() for m in found]
    if messages:
        raise ValidationError(errors.fields, messages[0] if len(messages) == 1 else "Some fields are invalid.")
