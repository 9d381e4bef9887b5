"""``flask --app wsgi rotate-credentials``: re-encrypt every stored secret with the first CREDENTIALS_KEY key.

Rotating the key: set ``CREDENTIALS_KEY=NEW,OLD`` (the first encrypts, all decrypt) and restart, run this
command, then drop ``OLD``. Audited as ``system`` via ``cli``."""
from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from .audit import services as audit
from .db import update
from .domain.errors import VaultKeyError
from .extensions import db, vault
from .models import EnvironmentRow, MigrationRow, WorkloadRow


def _rotate(token: str | None, what: str) -> str | None:
    if not token:
        return token
    try:
        return vault.rotate(token)
    except VaultKeyError:
        raise click.ClickException(
            f"The password of {what} cannot be read with any key of CREDENTIALS_KEY: nothing was re-encrypted. "
            "Keep the old key in CREDENTIALS_KEY (after the new one) until this command has succeeded.") from None


def rotate_all() -> int:
    """Re-encrypt every stored secret in one transaction (rows locked while it runs); how many were."""
    session = db.session
    count = 0
    try:
        for row in session.scalars(select(WorkloadRow).order_by(WorkloadRow.id).with_for_update()):
            new = _rotate(row.password_enc, f"workload {row.id}")
            if new != row.password_enc:
                # updated_at kept: the workload itself did not change
                session.execute(update(WorkloadRow).where(WorkloadRow.id == row.id)
                                .values(password_enc=new, updated_at=WorkloadRow.updated_at))
                count += 1
        for row in session.scalars(select(MigrationRow).order_by(MigrationRow.id).with_for_update()):
            values = {}
            new = _rotate(row.cloud_password_enc, f"migration {row.id} (cloud credentials)")
            if new != row.cloud_password_enc:
                values["cloud_password_enc"] = new
                count += 1
            vm = row.target_vm
            old_vm = (vm or {}).get("credentials", {}).get("password_enc")
            new_vm = _rotate(old_vm, f"migration {row.id} (target VM)")
            if new_vm != old_vm:
                values["target_vm"] = {**vm, "credentials": {**vm["credentials"], "password_enc": new_vm}}
                count += 1
            if values:
                session.execute(update(MigrationRow).where(MigrationRow.id == row.id)
                                .values(**values, updated_at=MigrationRow.updated_at))
        for row in session.scalars(select(EnvironmentRow).where(EnvironmentRow.secrets_enc.is_not(None))
                                   .order_by(EnvironmentRow.id).with_for_update()):
            new = _rotate(row.secrets_enc, f"environment {row.id} (secrets)")
            if new != row.secrets_enc:
                session.execute(update(EnvironmentRow).where(EnvironmentRow.id == row.id)
                                .values(secrets_enc=new, updated_at=EnvironmentRow.updated_at))
                count += 1
        audit.record("credentials.rotate", "credentials", count=count)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return count


@click.command("rotate-credentials")
@with_appcontext
def rotate_credentials():
    """Re-encrypt every stored password with the first key of CREDENTIALS_KEY (one transaction)."""
    audit.act_as("system", "cli")
    count = rotate_all()
    click.echo(f"Re-encrypted {count} stored secret{'' if count == 1 else 's'} with the first CREDENTIALS_KEY key.")
