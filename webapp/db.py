"""The database's whole life: engine, one session per app context, tables, ``init-db``."""
from __future__ import annotations

import os
from datetime import datetime, timezone

import click
from flask import Flask, current_app, g
from sqlalchemy import DateTime, create_engine, event
from sqlalchemy import update as sql_update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        if value is not None and dialect.name == "sqlite":
            return value.astimezone(timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime}


def update(entity):
    """An UPDATE that skips the ORM's in-session synchronisation: callers refresh what they keep."""
    return sql_update(entity).execution_options(synchronize_session=False)


def make_engine(url: str) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, pool_size=5, max_overflow=20)
        os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # SQLAlchemy, not pysqlite, emits BEGIN (below)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA mmap_size=268435456")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # Take the write lock up front: no deadlock between two upgrading readers.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    # A forked worker must not share the parent's sockets.
    os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
    return engine


class Database:
    """Engine per app; a session per app context, closed on teardown (the flaskr ``db.py`` idea)."""

    def init_app(self, app: Flask) -> None:
        engine = make_engine(app.config["DATABASE_URL"])
        app.extensions["db"] = sessionmaker(engine, expire_on_commit=False)
        app.teardown_appcontext(self._close)
        app.cli.add_command(init_db_command)
        create_tables(engine)

    @property
    def engine(self) -> Engine:
        return current_app.extensions["db"].kw["bind"]

    @property
    def session(self) -> Session:
        if "db_session" not in g:
            g.db_session = current_app.extensions["db"]()
        return g.db_session

    def new_session(self) -> Session:
        """A session of its own, for a thread outside the app context's one (the caller closes it)."""
        return current_app.extensions["db"]()

    @staticmethod
    def _close(_exc=None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()


def create_tables(engine: Engine) -> None:
    """Create missing tables; a process racing us to it is not an error."""
    from sqlalchemy.exc import OperationalError, ProgrammingError, IntegrityError

    from . import models  # noqa: F401  (registers the tables)

    for attempt in range(3):
        try:
            Base.metadata.create_all(engine)
            with engine.begin() as connection:
                models.seed(connection)
            return
        except (OperationalError, ProgrammingError, IntegrityError):
            if attempt == 2:
                raise


@click.command("init-db")
def init_db_command() -> None:
    """Create the tables (the app also does this when it starts)."""
    create_tables(current_app.extensions["db"].kw["bind"])
    click.echo("Database ready.")
