"""An environment's variables and write-only secrets (issue 14): stored, changed, and handed to a run.

Secrets are kept as one JSON object encrypted with the credentials key (``secrets_enc``, rotated with the
other credentials); ``secret_names`` lists their names so that pages never decrypt. Nothing here returns a
secret's value except ``for_run``, which only the run's job calls.
"""
from __future__ import annotations

import json

from ..extensions import vault
from ..models import EnvironmentRow

RUN_VARIABLES = ("CUTOVER_ENVIRONMENT_ID", "CUTOVER_ENVIRONMENT_NAME", "CUTOVER_RUN_ID")


def secrets_of(row: EnvironmentRow) -> dict[str, str]:
    return json.loads(vault.decrypt(row.secrets_enc)) if row.secrets_enc else {}


def store_secrets(row: EnvironmentRow, secrets: dict[str, str]) -> None:
    row.secrets_enc = vault.encrypt(json.dumps(secrets, sort_keys=True)) if secrets else None
    row.secret_names = sorted(secrets)


def diff(old: dict, new: dict) -> dict[str, list[str]]:
    """What the audit log says of a change: the names set (added or changed) and removed, never a value."""
    return {"set": sorted(n for n in new if old.get(n) != new[n]), "removed": sorted(set(old) - set(new))}


def for_run(row: EnvironmentRow, run_id: int) -> tuple[dict[str, str], dict[str, str]]:
    """``(variables, secrets)`` a run on ``row`` gets: its variables plus CUTOVER_ENVIRONMENT_ID/NAME and
    CUTOVER_RUN_ID, and the decrypted secrets (for the process's environment and the log masker only)."""
    given = {**(row.variables or {}), "CUTOVER_ENVIRONMENT_ID": str(row.id), "CUTOVER_ENVIRONMENT_NAME": row.name,
             "CUTOVER_RUN_ID": str(run_id)}
    return given, secrets_of(row)
