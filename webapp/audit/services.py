"""The audit log: append-only. ``record`` adds the entry to the caller's database session, so it is
committed in the same transaction as the change it describes. Never reads ``request``: who is acting
comes from the request's principal (set by ``webapp.auth``), else it is the system (a worker or the CLI)."""
from __future__ import annotations

from typing import Any, Mapping

from flask import g, has_request_context
from sqlalchemy import insert, select

from ..db import utcnow
from ..extensions import db
from ..models import AuditRow
from ..pagination import Page, paginate

SECRET_WORDS = ("password", "token", "secret", "key")


def _actor() -> tuple[str, str, str | None]:
    principal, ip = g.get("principal"), g.get("client_ip")
    if principal is not None:
        return principal.username, principal.via, ip
    return g.get("audit_actor") or "system", g.get("audit_via") or ("web" if has_request_context() else "worker"), ip


def _clean(details: Mapping[str, Any]) -> dict:
    """Drop anything that looks like a secret, whatever the caller passed (``*_names``: names, not values)."""
    return {k: v for k, v in details.items()
            if k.endswith("_names") or not any(word in k.lower() for word in SECRET_WORDS)}


def _entry(action: str, target: str, actor: str | None, details: Mapping[str, Any]) -> dict:
    who, via, ip = _actor()
    return {"actor": (actor or who)[:64], "via": via, "action": action, "target": target[:128], "ip": ip,
            "details": _clean(details)}


def record(action: str, target: str = "", *, actor: str | None = None, **details) -> AuditRow:
    """Add one entry to the current session (the caller commits it with its change)."""
    row = AuditRow(**_entry(action, target, actor, details))
    db.session.add(row)
    return row


def record_now(action: str, target: str = "", *, actor: str | None = None, **details) -> None:
    """``record``, as one INSERT executed now in the current transaction (no unit of work: for a hot path that
    has nothing else for the session to flush); the caller commits it with its change."""
    db.session.execute(insert(AuditRow.__table__).values(at=utcnow(), **_entry(action, target, actor, details)))


def act_as(actor: str, via: str) -> None:
    """For the CLI and the workers: who the entries of this app context are written for."""
    g.audit_actor, g.audit_via = actor, via


def as_json(row: AuditRow) -> dict:
    return {"id": row.id, "at": row.at.isoformat(), "actor": row.actor, "via": row.via, "action": row.action,
            "target": row.target, "ip": row.ip, "details": row.details or {}}


def list_page(page: int, per_page: int, filters: Mapping[str, Any]) -> Page:
    stmt = select(AuditRow)
    for name in ("actor", "action", "target"):
        if name in filters:
            column = getattr(AuditRow, name)
            value = filters[name]
            # "run" finds run.create, run.cancel…; "run:12" finds exactly that target
            stmt = stmt.where(column.startswith(value + ".") | (column == value)) if name == "action" else \
                stmt.where(column == value)
    if "since" in filters:
        stmt = stmt.where(AuditRow.at >= filters["since"])
    if "until" in filters:
        stmt = stmt.where(AuditRow.at <= filters["until"])
    return paginate(db.session, stmt, page, per_page, key=AuditRow.id, descending=True)
