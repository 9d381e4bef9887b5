"""What the audit log's page shows."""
from __future__ import annotations

from typing import Mapping

from .. import inputs
from ..pagination import Page


def listing(page: Page, args: Mapping[str, str]) -> dict:
    """The filters as typed: the form shows them, the pager's links keep them (and the page size)."""
    typed = inputs.filter_args(args, inputs.AUDIT_FILTERS)
    return {"page": page, "filters": typed, "keep": page.links(typed)}
