"""What the audit log's page shows."""
from __future__ import annotations

from typing import Mapping

from ..pagination import Page
from .services import FILTERS


def filter_args(args: Mapping[str, str]) -> dict[str, str]:
    """The filters as typed, for the form and the pager's links (never ``page``)."""
    return {name: args[name] for name in FILTERS if args.get(name, "").strip()}


def listing(page: Page, args: Mapping[str, str]) -> dict:
    """The filters as typed: the form shows them, the pager's links keep them (and the page size)."""
    typed = filter_args(args)
    return {"page": page, "filters": typed, "keep": page.links(typed)}
