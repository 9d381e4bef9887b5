"""One page of a query, the same for the HTML lists and the JSON API."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

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

    def as_json(self, present) -> dict:
        return {"items": [present(i) for i in self.items], "total": self.total, "page": self.page,
                "per_page": self.per_page}


def paginate(session: Session, stmt: Select, page: int, per_page: int) -> Page:
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    items = list(session.scalars(stmt.limit(per_page).offset((page - 1) * per_page)))
    return Page(items, total or 0, page, per_page)
