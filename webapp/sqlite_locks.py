"""SQLite's one write lock: who takes it and how a writer waits for it (``db.make_engine`` wires these in).

Every transaction begins ``BEGIN IMMEDIATE`` (the lock up front: two readers that then write never deadlock),
except what only reads: inside ``reading()`` (or on an engine with the ``reads_only`` option) a deferred BEGIN,
which in WAL mode reads a snapshot beside the writer. A writer waits first for the other writers of its own
process on a Python lock (``one_writer_per_process``), then for other processes' (``begin_immediate``).
"""
from __future__ import annotations

import functools
import os
import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

READING: ContextVar[bool] = ContextVar("sqlite_reading", default=False)


@contextmanager
def reading():
    """Transactions begun inside only read (SQLite: a deferred BEGIN, no write lock; other databases: as ever).
    The caller ends the transaction inside (commit or rollback) and writes nothing in it: a deferred transaction
    that writes after another process committed fails (SQLITE_BUSY) instead of waiting."""
    token = READING.set(True)
    try:
        yield
    finally:
        READING.reset(token)


BUSY_TIMEOUT_MS = 30000  # as PRAGMA busy_timeout: how long a write waits for another one's lock


def begin_immediate(conn, timeout: float = BUSY_TIMEOUT_MS / 1000) -> None:
    """``BEGIN IMMEDIATE``, waiting for the write lock in short steps (0.1 ms, growing to 2 ms) up to ``timeout``
    seconds. SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25 ... ms between tries, so a writer that
    finds the lock taken for 1 ms waits 3 to 8 ms: with a few processes writing short transactions, most of
    their time. The busy timeout is off only while BEGIN is tried; every other statement keeps it."""
    raw = conn.connection.dbapi_connection
    raw.execute("PRAGMA busy_timeout=0")
    try:
        deadline, pause = time.monotonic() + timeout, 0.0001
        while True:
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                return
            except OperationalError as exc:
                busy = "locked" in str(exc.orig) or "busy" in str(exc.orig)
                if not busy or time.monotonic() > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 1.5, 0.002)
    finally:
        raw.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


def one_writer_per_process(engine: Engine):
    """SQLite: this process's threads wait for the write lock on a Python lock, handed over the moment the holder
    commits, rolls back or closes, rather than in SQLite's busy handler, which sleeps 1, 2, 5, 10, 15... ms
    between tries (past the 30 s busy timeout a thread goes on to SQLite's own wait, as before). Returns the
    context manager the BEGIN runs in: the lock is let go at once if the BEGIN fails."""
    state, dialect = {"lock": threading.Lock(), "holders": set()}, engine.dialect
    os.register_at_fork(after_in_child=lambda: state.update(lock=threading.Lock(), holders=set()))

    def key(conn) -> int:  # the DBAPI connection itself, or the pool's proxy of it (what SQLAlchemy passes)
        return id(getattr(conn, "dbapi_connection", conn))

    def release(conn) -> None:
        if key(conn) in state["holders"]:
            state["holders"].discard(key(conn))
            state["lock"].release()

    @contextmanager
    def take(dbapi_conn):
        if key(dbapi_conn) not in state["holders"] and state["lock"].acquire(timeout=30):
            state["holders"].add(key(dbapi_conn))
        try:
            yield
        except BaseException:
            release(dbapi_conn)
            raise

    def wrap(name: str) -> None:
        original = getattr(dialect, name)

        @functools.wraps(original)
        def done(dbapi_conn, *args, **kwargs):
            try:
                return original(dbapi_conn, *args, **kwargs)
            finally:
                release(dbapi_conn)
        setattr(dialect, name, done)

    for name in ("do_commit", "do_rollback", "do_close"):  # the pool's reset and invalidation use these too
        wrap(name)
    return take
