"""One page of a query, the same for the HTML lists and the JSON API."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session


@dataclass
class Page:
    items: list[Any]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    def links(self, filters: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """What the list's links (to its other pages, its live refresh) carry: its filters, and its page
        size unless it is the default."""
        from .inputs import DEFAULT_PER_PAGE

        keep = {name: value for name, value in (filters or {}).items() if value not in (None, "")}
        return keep if self.per_page == DEFAULT_PER_PAGE else {**keep, "per_page": self.per_page}

    def as_json(self, present) -> dict:
        return {"items": [present(i) for i in self.items], "total": self.total, "page": self.page,
                "per_page": self.per_page}


def paginate(session: Session, stmt: Select, page: int, per_page: int, key=None) -> Page:
    """One page of ``stmt``'s rows. With ``key`` (the primary key column), the page's keys are found
    first through the narrow index and only those rows are loaded: deep pages stay fast."""
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    offset = (page - 1) * per_page
    if key is None:
        return Page(list(session.scalars(stmt.limit(per_page).offset(offset))), total or 0, page, per_page)
    ids = list(session.scalars(stmt.with_only_columns(key).limit(per_page).offset(offset)))
    rows = {getattr(r, key.key): r for r in session.scalars(stmt.where(key.in_(ids)))} if ids else {}
    return Page([rows[i] for i in ids if i in rows], total or 0, page, per_page)
