"""``paginate`` with a key: every page, read from the near end or the far one, is exactly the slice a plain
ORDER BY ... LIMIT ... OFFSET gives, ascending and descending, with gaps in the ids and a filter."""
from __future__ import annotations

import pytest
from sqlalchemy import Integer, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from webapp.pagination import paginate


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))


@pytest.fixture(scope="module")
def session():
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        s.add_all(Item(id=i * 3 + (i % 2), kind="odd" if i % 2 else "even") for i in range(1, 24))  # gaps
        s.commit()
        yield s


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("kind", [None, "odd"])
@pytest.mark.parametrize("per_page", [1, 5, 7, 50])
def test_every_page_is_the_plain_offset_slice(session, descending, kind, per_page):
    stmt = select(Item) if kind is None else select(Item).where(Item.kind == kind)
    expected = [i.id for i in session.scalars(stmt.order_by(Item.id.desc() if descending else Item.id))]
    for page in range(1, len(expected) // per_page + 3):  # one page past the end, and one more
        got = paginate(session, stmt, page, per_page, key=Item.id, descending=descending)
        assert [i.id for i in got.items] == expected[(page - 1) * per_page:page * per_page], page
        assert got.total == len(expected)


def test_an_empty_list_has_one_empty_page(session):
    got = paginate(session, select(Item).where(Item.kind == "none"), 1, 5, key=Item.id)
    assert (got.items, got.total, got.pages) == ([], 0, 1)
