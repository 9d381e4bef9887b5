"""Query strings → checked values: the page, a log offset and each list's filters, parsed once for the pages and
the API alike."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Mapping

from ..domain import events, pools, runs
from ..domain.migration import MigrationState
from ..domain.errors import ValidationError
from .errors import Errors

MAX_PER_PAGE = 500
DEFAULT_PER_PAGE = 50
AUDIT_TEXT_MAX = 128  # an audit filter is compared with columns this long at most


def page(args: Mapping[str, str]) -> tuple[int, int]:
    """``?page=&per_page=``: page from 1; per_page default 50, at most 500."""
    errors = Errors()
    values = {}
    for name, default in (("page", 1), ("per_page", DEFAULT_PER_PAGE)):
        raw = args.get(name)
        try:
            values[name] = default if raw in (None, "") else int(raw)
            if not 1 <= values[name] <= 10**9:
                raise ValueError
        except (TypeError, ValueError):
            errors.add(name, f"{name} must be a whole number of 1 or more.")
    errors.raise_if_any()
    return values["page"], min(values["per_page"], MAX_PER_PAGE)


def offset(args: Mapping[str, str]) -> int:
    """``?offset=N`` of a log: a whole number; past any log's end it means "the end"."""
    raw = args.get("offset") or "0"
    if not (raw.isascii() and raw.isdigit()):
        raise ValidationError.single("offset", "offset must be a whole number of 0 or more.")
    return int(raw) if len(raw) <= 18 else 10**18


# ---- list filters (?name=value): the same parse for the pages and the API ---------------------------

def filter_args(args: Mapping[str, str], names: tuple[str, ...]) -> dict[str, str]:
    """The filters as typed, for a filter form and a pager's links (never ``page``)."""
    return {name: args[name] for name in names if (args.get(name) or "").strip()}


RUN_FILTERS = ("state", "environment_id", "pool", "username")
EVENT_FILTERS = ("status", "user_id")
AUDIT_FILTERS = ("actor", "action", "target", "since", "until")


def run_filters(args: Mapping[str, str]) -> dict:
    errors, filters = Errors(), {}
    if args.get("state"):
        try:
            filters["state"] = runs.RunState(args["state"]).value
        except ValueError:
            errors.add("state", "Unknown state: use " + ", ".join(s.value for s in runs.RunState) + ".")
    if args.get("environment_id"):
        try:
            filters["environment_id"] = runs.check_environment_id(args["environment_id"])
        except ValidationError as exc:
            errors.absorb(exc)
    if args.get("pool"):
        try:
            filters["pool"] = pools.check_label(args["pool"].strip())
        except ValidationError as exc:
            errors.absorb(exc)
    if args.get("username"):
        filters["username"] = args["username"].strip()
    errors.raise_if_any()
    return filters


def label_filter(args: Mapping[str, str]) -> str | None:
    """``?label=`` of the environments list: one well-formed label, or None for all environments."""
    value = (args.get("label") or "").strip()
    return pools.check_label(value, "label") if value else None


def event_filters(args: Mapping[str, str]) -> dict:
    filters = {}
    if args.get("status"):
        try:
            filters["status"] = events.EventStatus(args["status"]).value
        except ValueError:
            raise ValidationError.single("status", "Status must be pending, processed or failed.") from None
    if args.get("user_id"):
        filters["user_id"] = args["user_id"]
    return filters


def migration_filters(args: Mapping[str, str]) -> dict:
    """``?state=``: one of the migration states."""
    if not args.get("state"):
        return {}
    try:
        return {"state": MigrationState(args["state"]).value}
    except ValueError:
        raise ValidationError.single("state", "Unknown state: use " + ", ".join(s.value for s in MigrationState)
                                     + ".") from None


def _moment(value: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError.single(name, "Use an ISO 8601 date or time, e.g. 2026-12-01 or "
                                           "2026-12-01T08:00:00Z.") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def audit_filters(args: Mapping[str, str]) -> dict:
    errors, filters = Errors(), {}
    for name in ("actor", "action", "target"):
        if (args.get(name) or "").strip():
            filters[name] = args[name].strip()[:AUDIT_TEXT_MAX]
    for name in ("since", "until"):
        if (args.get(name) or "").strip():
            try:
                filters[name] = _moment(args[name], name)
            except ValidationError as exc:
                errors.absorb(exc)
    errors.raise_if_any()
    return filters


def test_outcome(args: Mapping[str, str]) -> str | None:
    """``?outcome=`` on a run's page: one of a test's outcomes (passed, failed, error, skipped, xfailed, xpassed)."""
    from ..domain.results import OUTCOMES

    value = (args.get("outcome") or "").strip()
    if value and value not in OUTCOMES:
        raise ValidationError.single("outcome", "Unknown outcome: use " + ", ".join(OUTCOMES) + ".")
    return value or None


def queue_target(args: Mapping[str, str]) -> tuple[int | None, str | None]:
    """``?environment_id=`` (1..100) or ``?pool=<label>``: whose queue to show (blank: not chosen; other
    arguments, such as the rest of the new-run form, are ignored). Both at once is refused."""
    raw_env, raw_pool = (args.get("environment_id") or "").strip(), (args.get("pool") or "").strip()
    if raw_env and raw_pool:
        raise ValidationError.single("pool", "Choose an environment or a pool, not both.")
    environment_id = runs.check_environment_id(raw_env) if raw_env else None
    return environment_id, pools.check_label(raw_pool) if raw_pool else None


def pool_label(value: str) -> str:
    """A pool's label in a URL (``/api/v1/pools/<label>``): lower-case letters, digits, '_' or '-', 1 to 32."""
    return pools.check_label(value, "label")
