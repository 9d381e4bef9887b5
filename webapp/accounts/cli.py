"""``flask --app wsgi users …``: manage accounts from the host (audited as ``system`` via ``cli``)."""
from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from ..audit import services as audit
from ..domain.accounts import Principal, Role
from ..domain.errors import DomainError, ValidationError
from . import bp
from . import services as accounts
from . import tokens

users_cli = AppGroup("users", help="Create and manage accounts and their API tokens.")
bp.cli.commands.clear()

ROLE = click.Choice([r.value for r in Role])
CLI = Principal("system", Role.ADMIN, "cli")


def _run(action):
    audit.act_as("system", "cli")
    try:
        return action()
    except ValidationError as exc:
        details = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.fields.items()) or exc.message
        raise click.ClickException(details) from None
    except DomainError as exc:
        raise click.ClickException(exc.message) from None


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@users_cli.command("create")
@click.argument("username")
@click.option("--role", type=ROLE, default="viewer", show_default=True)
@click.option("--display-name", default="")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
def create(username, role, display_name, password_stdin):
    """Create an account."""
    password = _password(password_stdin)
    row = _run(lambda: accounts.create_user({"username": username, "password": password, "role": role,
                                            "display_name": display_name}))
    click.echo(f"Created {row.username} ({row.role}).")


@users_cli.command("list")
def list_users():
    """List the accounts."""
    for row in accounts.list_users():
        state = "disabled" if row.disabled else "active"
        click.echo(f"{row.username}\t{row.role}\t{state}\t{row.display_name or ''}")


@users_cli.command("set-role")
@click.argument("username")
@click.argument("role", type=ROLE)
def set_role(username, role):
    """Change an account's role."""
    row = _run(lambda: accounts.update_user(username, {"role": role}, CLI))
    click.echo(f"{row.username} is now {row.role}.")


@users_cli.command("disable")
@click.argument("username")
@click.option("--enable", is_flag=True, help="Enable the account again instead.")
def disable(username, enable):
    """Disable an account: it cannot sign in and its sessions and tokens stop working at once."""
    row = _run(lambda: accounts.update_user(username, {"disabled": not enable}, CLI))
    click.echo(f"{row.username} is {'disabled' if row.disabled else 'enabled'}.")


@users_cli.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True)
def set_password(username, password_stdin):
    """Set an account's password (its sessions are signed out)."""
    password = _password(password_stdin)
    row = _run(lambda: accounts.update_user(username, {"password": password}, CLI))
    click.echo(f"Password of {row.username} changed.")


@users_cli.command("token")
@click.argument("username")
@click.option("--name", required=True, help="What the token is for, e.g. ci.")
@click.option("--role", type=ROLE, default=None, help="At most the account's role (default: its role).")
@click.option("--expires-days", type=int, default=None)
def token(username, name, role, expires_days):
    """Create an API token for an account and print it (once: it is stored only as a hash)."""
    row = _run(lambda: accounts.get(username))
    owner = Principal(row.username, Role(row.role), "cli", row.id)
    _, clear = _run(lambda: tokens.create_token(row.id, {"name": name, "role": role,
                                                         "expires_in_days": expires_days}, owner))
    click.echo(clear)
