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


def paginate(session: Session, stmt: Select, page: int, per_page: int, key=None, descending: bool = False) -> Page:
    """One page of ``stmt``'s rows. With ``key`` (the primary key column; ``stmt`` then has no ORDER BY: the page
    is in ``key`` order, ``descending`` or not), the page's keys are found first through the narrow index and
    only those rows are loaded; a page in the second half is found from the far end (a shorter OFFSET, walked
    backwards), so the last page costs what the first does and a deep one at most half the list."""
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    offset = (page - 1) * per_page
    if key is None:
        return Page(list(session.scalars(stmt.limit(per_page).offset(offset))), total, page, per_page)
    forwards, backwards = (key.desc(), key) if descending else (key, key.desc())
    ids_of = stmt.with_only_columns(key)
    from_end = total - offset - per_page  # rows after this page
    if offset >= total:
        ids = []
    elif offset > 0 and from_end < offset:
        tail = max(from_end, 0)
        ids = list(session.scalars(ids_of.order_by(backwards).limit(per_page + min(from_end, 0)).offset(tail)))
        ids.reverse()
    else:
        ids = list(session.scalars(ids_of.order_by(forwards).limit(per_page).offset(offset)))
    rows = {getattr(r, key.key): r for r in session.scalars(stmt.where(key.in_(ids)))} if ids else {}
    return Page([rows[i] for i in ids if i in rows], total, page, per_page)
