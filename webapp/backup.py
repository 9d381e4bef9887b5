"""``cutover backup FILE`` and ``cutover restore FILE``: the SQLite database, copied with SQLite's online backup
API (a consistent snapshot, taken while the app runs and writes; in WAL mode writers go on meanwhile).

Only the database is copied. DATA_DIR's keys (``secret_key``, ``credentials_key``, ``redis_password``) are
backed up separately: the stored passwords cannot be read without ``credentials_key``. PostgreSQL has its own
tools (``pg_dump``, ``pg_restore``): both commands say so and exit non-zero."""
from __future__ import annotations

import fcntl
import os
import sqlite3
from contextlib import closing, contextmanager
from pathlib import Path

import click
from sqlalchemy.engine import make_url

KEYS = ("secret_key", "credentials_key", "redis_password")
LOCK_NAME = ".allinone.lock"  # flock'ed by a running all-in-one (allinone/supervisor.py)
KEYS_NOTE = (f"Only the database is in the copy: keep DATA_DIR's {', '.join(KEYS)} too (the stored passwords "
             "cannot be read without credentials_key).")


def settings() -> tuple[Path, str]:
    """DATA_DIR and DATABASE_URL as the app reads them, without generating any key into DATA_DIR."""
    from .config import database_url, inherited_secrets

    env = {**os.environ, **inherited_secrets()}
    data_dir = Path(env.get("DATA_DIR") or "var").resolve()
    return data_dir, database_url(data_dir, env)


def sqlite_file(url: str, other: str) -> Path:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        raise click.ClickException(f"DATABASE_URL is a {parsed.get_backend_name()} database: {other}")
    if not parsed.database or parsed.database == ":memory:" or parsed.query.get("mode") == "memory":
        raise click.ClickException("DATABASE_URL is an in-memory SQLite database: there is nothing to copy")
    return Path(parsed.database).resolve()


def _copy(source: sqlite3.Connection, destination: Path) -> str:
    """Copy ``source`` into a new file ``destination`` (one step: one consistent snapshot), as a single file
    (journal_mode DELETE), checked; return its Alembic revision."""
    destination.unlink(missing_ok=True)
    with closing(sqlite3.connect(destination)) as copy:
        source.backup(copy)  # pages=-1: the whole database in one step, under one read transaction
        copy.execute("PRAGMA journal_mode=DELETE")
        check = copy.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise click.ClickException(f"the copy fails PRAGMA integrity_check: {check}")
        revision = copy.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    os.chmod(destination, 0o600)
    with open(destination, "rb") as fh:
        os.fsync(fh.fileno())
    return revision


def backup(file: str, force: bool) -> str:
    data_dir, url = settings()
    database = sqlite_file(url, "use `pg_dump -Fc -f FILE \"$DATABASE_URL\"` (and `pg_restore` to restore it); "
                                "back up DATA_DIR's keys beside it")
    if not database.is_file():
        raise click.ClickException(f"{database} does not exist: no database to back up (DATA_DIR={data_dir})")
    target = Path(file).resolve()
    if target == database:
        raise click.ClickException("FILE is the database itself")
    if target.exists() and not force:
        raise click.ClickException(f"{target} exists: pass --force to replace it")
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        with closing(sqlite3.connect(database, timeout=30)) as source:
            revision = _copy(source, partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return (f"Backed up {database} (revision {revision}, {target.stat().st_size} bytes) to {target}.\n{KEYS_NOTE}")


def check_backup(path: Path) -> str:
    """The Alembic revision of a backup file; refuse anything that is not a Cutover SQLite database this
    release can upgrade."""
    from . import schema
    from alembic.script import ScriptDirectory

    if not path.is_file():
        raise click.ClickException(f"{path} is not a file")
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "alembic_version" not in tables:
                raise click.ClickException(f"{path} has no alembic_version table: not a Cutover database")
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise click.ClickException(f"{path} is not a SQLite database ({exc})") from None
    if check != "ok":
        raise click.ClickException(f"{path} is damaged (PRAGMA quick_check: {check})")
    revision = row[0] if row else None
    known = {script.revision for script in ScriptDirectory.from_config(schema.config()).walk_revisions()}
    if revision not in known:
        raise click.ClickException(f"{path} is at revision {revision!r}, which this release does not know "
                                   "(made by a newer Cutover?): restore it with that release")
    return revision


@contextmanager
def stopped(data_dir: Path):
    """Hold DATA_DIR's all-in-one lock (so none starts meanwhile); refuse if a running one holds it."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(data_dir / LOCK_NAME, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise click.ClickException(f"a Cutover all-in-one is running with DATA_DIR={data_dir}: stop it first "
                                       "(Ctrl-C, or SIGTERM)") from None
        yield


def restore(file: str, force: bool) -> str:
    data_dir, url = settings()
    database = sqlite_file(url, "restore a pg_dump with `pg_restore -d \"$DATABASE_URL\" FILE`")
    source = Path(file).resolve()
    revision = check_backup(source)
    with stopped(data_dir):
        if database.exists() and not force:
            raise click.ClickException(f"{database} exists: stop every web and worker process using it, then "
                                       "pass --force to replace it")
        database.parent.mkdir(parents=True, exist_ok=True)
        partial = database.with_name(f".{database.name}.restore-{os.getpid()}")
        try:
            with closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as backup_file:
                _copy(backup_file, partial)
            for suffix in ("-wal", "-shm"):  # the old database's: they must never meet the restored file
                Path(f"{database}{suffix}").unlink(missing_ok=True)
            os.replace(partial, database)
        finally:
            partial.unlink(missing_ok=True)
        _audit(database, source, revision)
    missing = [name for name in KEYS[:2] if not (data_dir / name).exists()]
    note = (f"\nDATA_DIR has no {' or '.join(missing)}: copy the keys of the backed-up DATA_DIR there before "
            "starting (or set SECRET_KEY and CREDENTIALS_KEY), else the stored passwords cannot be read."
            if missing else "")
    return f"Restored {source} (revision {revision}) into {database}.{note}"


def _audit(database: Path, source: Path, revision: str) -> None:
    """Bring the restored copy to the newest revision (as the app would at its start) and record the restore
    in its audit log (``database.restore``, by ``system`` via ``cli``)."""
    from flask import Flask
    from sqlalchemy.orm import sessionmaker

    from .audit import services as audit
    from .db import make_engine, upgrade
    from .extensions import db

    engine = make_engine(f"sqlite:///{database}")
    try:
        upgrade(engine)
        app = Flask("cutover-restore")
        app.extensions["db"] = sessionmaker(engine, expire_on_commit=False)
        with app.app_context():
            audit.act_as("system", "cli")
            audit.record("database.restore", "database", file=str(source), revision=revision)
            db.session.commit()
            db.session.close()
    finally:
        engine.dispose()
