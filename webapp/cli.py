"""``cutover``: one command for every process of Cutover (the console script of pyproject.toml).

``cutover web``         gunicorn with the checkout's gunicorn.conf.py (extra arguments go to gunicorn)
``cutover worker``      one RQ worker, as ``python worker.py`` (``--burst``: stop when the queues are empty)
``cutover all-in-one``  Redis, the workers and gunicorn on one machine, as ``make run``
``cutover db …``        ``upgrade``, ``current``, ``revision``: the ``flask --app wsgi db`` commands
``cutover users …``     the ``flask --app wsgi users`` commands; ``cutover rotate-credentials`` likewise
``cutover backup FILE`` a consistent copy of the SQLite database while the app runs; ``cutover restore FILE``

The ``db``, ``users`` and ``rotate-credentials`` commands are the app's own Flask CLI commands, run with an
app from ``create_app()`` (the environment's settings). Also ``python -m webapp.cli``.

Cutover runs from a checkout (installed with ``pip install -e .``, as ``make install`` does): templates/,
static/, sample_tests/, wsgi.py, worker.py and gunicorn.conf.py sit beside webapp/. From a wheel they are
missing, so ``web``, ``worker`` and ``all-in-one`` stop at once and say so.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from flask.cli import ScriptInfo

from .accounts.cli import users_cli
from .credentials_cli import rotate_credentials
from .db import db_command
from .version import VERSION

ROOT = Path(__file__).resolve().parent.parent  # the checkout: wsgi.py, templates/, gunicorn.conf.py
CHECKOUT_FILES = ("wsgi.py", "worker.py", "gunicorn.conf.py", "templates", "static", "sample_tests")


def _create_app():
    from . import create_app

    return create_app()


def require_checkout() -> None:
    """Stop with a clear message unless webapp/ sits in a checkout (templates/, wsgi.py, … beside it)."""
    missing = [name for name in CHECKOUT_FILES if not (ROOT / name).exists()]
    if missing:
        raise click.ClickException(
            f"{', '.join(missing)} not found in {ROOT}: Cutover runs from a checkout of its repository. "
            "Install it from there with `pip install -e .` (or `make install`), not as a wheel."
        )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(VERSION, prog_name="cutover")
def cutover() -> None:
    """Cutover: the web server, the workers, the all-in-one mode and the admin commands.

    Settings come from the environment (README, Configuration; deploy/cutover.env.example).
    """
    # A relative DATA_DIR means the caller's directory, even where a command changes directory (web).
    os.environ["DATA_DIR"] = os.path.abspath(os.environ.get("DATA_DIR") or "var")


@cutover.command(short_help="The web server (gunicorn -c gunicorn.conf.py wsgi:app).",
                 context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("gunicorn_args", nargs=-1, type=click.UNPROCESSED)
def web(gunicorn_args: tuple[str, ...]) -> None:
    """The web server: gunicorn -c gunicorn.conf.py wsgi:app (GUNICORN_ARGS are added, e.g. --bind)."""
    require_checkout()
    argv = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "--chdir", str(ROOT),
            *gunicorn_args, "wsgi:app"]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)  # the same pid: systemd's signals and sd_notify reach gunicorn itself


@cutover.command(short_help="One RQ worker (as python worker.py).")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
def worker(burst: bool) -> None:
    """One RQ worker (the same as python worker.py): jobs and the maintenance loop."""
    require_checkout()
    from .workers import start_worker

    start_worker(_create_app(), burst=burst)


@cutover.command("all-in-one", short_help="Redis, workers and web on one machine (as make run).")
def all_in_one() -> None:
    """Redis, WORKERS workers and gunicorn on 127.0.0.1:PORT (the same as make run / python -m webapp.allinone)."""
    require_checkout()
    from .allinone import main as allinone_main

    sys.exit(allinone_main())


@cutover.command(short_help="A consistent copy of the SQLite database, while the app runs.")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
def backup(file: str, force: bool) -> None:
    """Copy the SQLite database (DATABASE_URL, else DATA_DIR/cutover.db) to FILE with SQLite's online backup
    API: a consistent snapshot, safe while the app runs. Only the database: back up DATA_DIR's keys separately.
    For PostgreSQL it says to use pg_dump and exits non-zero."""
    from . import backup as backups

    click.echo(backups.backup(file, force))


@cutover.command(short_help="Put a backup in place of the SQLite database of a stopped DATA_DIR.")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Replace the database if it exists.")
def restore(file: str, force: bool) -> None:
    """Restore FILE (made by `cutover backup`) as DATA_DIR's database. Refused while an all-in-one runs on
    DATA_DIR, or when the database exists (unless --force; stop the web and workers first)."""
    from . import backup as backups

    click.echo(backups.restore(file, force))


cutover.add_command(db_command)  # db upgrade | current | revision
cutover.add_command(users_cli)  # users create | list | set-role | disable | set-password | token
cutover.add_command(rotate_credentials)


def main() -> None:
    """The console script ``cutover``."""
    cutover.main(prog_name="cutover", obj=ScriptInfo(create_app=_create_app, set_debug_flag=False))


if __name__ == "__main__":
    main()
