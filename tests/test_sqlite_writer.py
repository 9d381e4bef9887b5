"""SQLite: one writer per process at a time, handed over on a Python lock (``sqlite_locks.one_writer_per_process``): every
way a transaction ends lets the next one in at once, whichever thread it runs in."""
from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from webapp.db import make_engine


def test_every_way_a_transaction_ends_hands_the_write_lock_over_at_once(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    errors = []

    def writer(n: int) -> None:
        try:
            for i in range(n):
                with Session(engine) as session:
                    session.execute(text("INSERT INTO t VALUES (1)"))
                    if i % 4 == 0:
                        session.commit()
                    elif i % 4 == 1:
                        session.rollback()
                    elif i % 4 == 2:
                        try:
                            with session.begin_nested():
                                raise ValueError("refused")
                        except ValueError:
                            session.commit()
                    # else: closed with its transaction open (the pool rolls it back)
                with engine.connect() as conn:  # a Core connection too, given back in a transaction
                    conn.execute(text("SELECT count(*) FROM t")).scalar()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    started = time.monotonic()
    threads = [threading.Thread(target=writer, args=(60,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and not any(t.is_alive() for t in threads)
    assert time.monotonic() - started < 20  # a lock left held would cost 30 s per transaction after it
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 4 * 2 * 15  # the commits only
    engine.dispose()


def test_a_statement_that_fails_inside_a_transaction_lets_the_next_writer_in(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'f.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER NOT NULL)"))
    for _ in range(3):
        with pytest.raises(Exception), Session(engine) as session:
            session.execute(text("INSERT INTO t VALUES (NULL)"))
    done = []
    thread = threading.Thread(target=lambda: done.append(engine.connect().execute(text("SELECT 1")).scalar()))
    thread.start()
    thread.join(5)
    assert done == [1]
    engine.dispose()
