"""The database's whole life: engine, one session per app context, the schema (``upgrade``, ``flask db``)."""
from __future__ import annotations

import fcntl
import functools
import os
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import click
from flask import Flask, current_app, g, has_request_context, request
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import DateTime, create_engine, event, inspect, text
from sqlalchemy import update as sql_update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from .sqlite_locks import BUSY_TIMEOUT_MS, READING, begin_immediate, one_writer_per_process, reading  # noqa: F401


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
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA mmap_size=268435456")
            cur.close()

        take_writer = one_writer_per_process(engine)

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # Take the write lock up front: no deadlock between two upgrading readers. What only reads takes
            # none (in WAL mode a deferred BEGIN reads a snapshot beside the writer): a polled fragment
            # (``reads_only``, on the session's engine) and whatever runs inside ``reading()``. A writer
            # waits first for this process's other writers (``take_writer``), then for other processes'
            # (``begin_immediate``).
            if READING.get() or conn.get_execution_options().get("reads_only"):
                conn.exec_driver_sql("BEGIN")
            else:
                with take_writer(conn.connection.dbapi_connection):
                    begin_immediate(conn)

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
        app.extensions["db_reader"] = engine.execution_options(reads_only=True)  # the same pool
        app.teardown_appcontext(self._close)
        app.cli.add_command(db_command)
        app.cli.add_command(init_db_command)
        upgrade(engine, app.config["DATA_DIR"])

    @property
    def engine(self) -> Engine:
        return current_app.extensions["db"].kw["bind"]

    @property
    def session(self) -> Session:
        if "db_session" not in g:
            reader = current_app.extensions["db_reader"] if _polled_read() else None
            g.db_session = current_app.extensions["db"](**({"bind": reader} if reader is not None else {}))
        return g.db_session

    def end_read(self) -> None:
        """A GET that has read all it shows ends its read transaction before rendering: on SQLite every
        transaction holds the database's lock (BEGIN IMMEDIATE, above), which every other request and job waits
        for. Its objects stay loaded (``expire_on_commit=False``). Only for a GET that reads: pending ORM changes
        are left alone, but a Core UPDATE already sent would be committed."""
        session = g.get("db_session")
        if session is not None and session.in_transaction() and not (session.new or session.dirty or session.deleted):
            session.commit()

    def new_session(self) -> Session:
        """A session of its own, for a thread outside the app context's one (the caller closes it)."""
        return current_app.extensions["db"]()

    @staticmethod
    def _close(_exc=None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()


def reads_only(view):
    """Mark a GET view that only reads and is polled: a page's live fragment (its htmx polls) or an API read (every
    GET of it). On SQLite their transaction is a deferred BEGIN, which waits for no one, not BEGIN IMMEDIATE, the
    database's one write lock that every writer (a migration's progress, a run's log) and every other request
    queue for. A page's full render and other methods are unchanged."""
    view.reads_only = True
    return view


def _polled_read() -> bool:
    from .auth import token_path
    from .htmx import is_htmx

    if not has_request_context() or request.method != "GET":
        return False
    if not getattr(current_app.view_functions.get(request.endpoint or ""), "reads_only", False):
        return False
    return is_htmx() or token_path(request.path)


# Any constant will do, as long as every process of the app uses the same one.
SCHEMA_LOCK_KEY = 0x637574_6F766572  # "cutover"


def upgrade(engine: Engine, data_dir: str | None = None) -> None:
    """Bring the database to the newest revision, then seed it. Several processes may do this at once.

    ``data_dir``: the app's DATA_DIR, for revisions that import files from it (0005: ``DATA_DIR/uploads``).

    One at a time: a PostgreSQL advisory lock, or a lock file next to the SQLite database, is held while
    the schema is read and changed, in one transaction. A database made by a release before Alembic
    (its tables, no ``alembic_version``) is adopted as it is: stamped with the baseline, then upgraded.
    """
    from . import models, schema  # schema first: it quietens alembic's loggers

    from alembic import command

    with _schema_lock(engine), engine.connect() as connection:
        sqlite_foreign_keys(connection, False)  # a revision may rebuild a table that others reference
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
        if current_revision(connection) != head_revision():
            cfg = schema.config(connection, data_dir=data_dir)
            tables = set(inspect(connection).get_table_names())
            released = tables & schema.RELEASED_TABLES
            if released and "alembic_version" not in tables:
                if released == schema.RELEASED_TABLES:
                    command.stamp(cfg, schema.BASELINE)
                else:  # an older release still: the baseline adds the tables it lacks
                    cfg.attributes["existing_tables"] = frozenset(released)
            command.upgrade(cfg, "head")
        models.seed(connection)
        connection.commit()
        sqlite_foreign_keys(connection, True)


def sqlite_foreign_keys(connection, on: bool) -> None:
    """SQLite: turn foreign keys off while revisions rebuild tables (``batch_alter_table``), which drops the
    old table; with them on, that drop would cascade to the rows referencing it. Outside a transaction only:
    SQLite ignores the pragma inside one. Turning them back on checks that every reference still holds."""
    if connection.dialect.name != "sqlite":
        return
    if connection.in_transaction():  # would be ignored: a caller's mistake, not something to hide
        raise RuntimeError("PRAGMA foreign_keys must be set outside a transaction")
    raw = connection.connection.dbapi_connection  # not through SQLAlchemy, which would BEGIN first
    raw.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    if on:
        broken = raw.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"the schema upgrade left broken references: {broken[:5]}")


def current_revision(connection) -> str | None:
    """The database's revision; None for a database without ``alembic_version``."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.scalar(text("SELECT version_num FROM alembic_version"))


@functools.cache
def head_revision() -> str:
    from . import schema  # first: it quietens alembic's loggers

    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(schema.config()).get_current_head()


@contextmanager
def _schema_lock(engine: Engine):
    """An exclusive lock file next to a SQLite database file; nothing otherwise (PostgreSQL locks in SQL)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:" \
            or engine.url.query.get("mode") == "memory":
        yield
        return
    with open(Path(database).with_name(Path(database).name + ".schema-lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _app_engine() -> Engine:
    return current_app.extensions["db"].kw["bind"]


db_command = AppGroup("db", help="The database schema: Alembic revisions in webapp/schema/versions.")


@db_command.command("upgrade")
def db_upgrade_command() -> None:
    """Bring the database to the newest revision (the app also does this when it starts)."""
    _upgrade_and_say_so()


def _upgrade_and_say_so() -> None:
    upgrade(_app_engine(), current_app.config["DATA_DIR"])
    click.echo(f"Database at {head_revision()}.")


@db_command.command("current")
def db_current_command() -> None:
    """Print the database's revision."""
    with _app_engine().connect() as connection:
        click.echo(current_revision(connection) or "none")


@db_command.command("revision")
@click.option("-m", "--message", required=True, help="what the revision changes")
@click.option("--empty", is_flag=True, help="do not compare the models with the database")
def db_revision_command(message: str, empty: bool) -> None:
    """Write a new revision (compared with the models unless --empty); read it and finish it by hand."""
    import re

    from . import schema  # first: it quietens alembic's loggers

    from alembic import command
    from alembic.script import ScriptDirectory

    cfg = schema.config(_app_engine())
    number = len(list(ScriptDirectory.from_config(cfg).walk_revisions())) + 1
    slug = re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_")[:40]
    cfg.set_main_option("file_template", "%%(rev)s")
    script = command.revision(cfg, message, autogenerate=not empty, rev_id=f"{number:04d}_{slug}")
    click.echo(f"Wrote {script.path}")


@click.command("init-db")
@with_appcontext
def init_db_command() -> None:
    """The same as ``flask db upgrade`` (kept for older instructions)."""
    _upgrade_and_say_so()
