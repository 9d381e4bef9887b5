"""Alembic's environment, run by every ``alembic.command`` (configured by ``webapp.schema.config``).

The connection (or engine) comes from ``config.attributes["connection"]``: the app and the tests pass
their own. Without one, the ``sqlalchemy.url`` option or the app's DATABASE_URL setting is used.
"""
from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from webapp import models  # noqa: F401  (registers the tables)
from webapp.db import Base, make_engine, sqlite_foreign_keys
from webapp.schema import COMPARE_OPTIONS

config = context.config
target_metadata = Base.metadata


def database_url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        from webapp.config import load

        url = load()["DATABASE_URL"]
    return url


def run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, **COMPARE_OPTIONS)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    given = config.attributes.get("connection")
    if isinstance(given, Connection):
        run_migrations(given)  # the caller's transaction: the caller commits
        return
    engine = given if given is not None else make_engine(database_url())
    try:
        with engine.connect() as connection:
            sqlite_foreign_keys(connection, False)  # see sqlite_foreign_keys
            run_migrations(connection)
            connection.commit()
            sqlite_foreign_keys(connection, True)
    finally:
        if given is None:
            engine.dispose()


def run_migrations_offline() -> None:
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True, **COMPARE_OPTIONS)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
