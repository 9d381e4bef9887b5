"""Where a notification goes: the notification log, the in-app inbox and, when configured, a webhook."""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from flask import current_app
from sqlalchemy import insert, select

from ..domain.events import notification_line
from ..extensions import db
from ..models import EventRow, NotificationRow

WEBHOOK_ATTEMPTS = 3
WEBHOOK_TIMEOUT = 5.0


class DeliveryError(Exception):
    """A channel could not deliver; the message says why."""


def write_log(*events: EventRow) -> None:
    """Append the deliveries' lines to DATA_DIR/notifications.log (one write, so lines never interleave)."""
    if not events:
        return
    path = Path(current_app.config["DATA_DIR"]) / "notifications.log"
    data = "".join(notification_line(e.id, e.user_id, e.description) + "\n" for e in events).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)  # DATA_DIR need not exist yet (secrets given by env)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    try:
        while data:  # a regular file takes it in one write; a short write only goes on where it stopped
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)


def add_to_inbox(*events: EventRow) -> None:
    """One inbox entry per event, however often the event is delivered (one SELECT and one INSERT for many)."""
    if not events:
        return
    session = db.session
    have = set(session.scalars(select(NotificationRow.event_id).where(
        NotificationRow.event_id.in_([e.id for e in events]))))
    new = [{"event_id": e.id, "user_id": e.user_id, "text": e.description, "link": e.link}
           for e in events if e.id not in have]
    if new:
        session.execute(insert(NotificationRow), new)


def signature(body: bytes, secret: str) -> str:
    """The legacy ``X-Cutover-Signature``: HMAC-SHA256 of the body keyed by the secret's UTF-8 bytes."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def standard_key(secret: str) -> bytes:
    """The Standard Webhooks key: the base64 part after ``whsec_``, else the secret's UTF-8 bytes."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[len("whsec_"):], validate=True)
        except (binascii.Error, ValueError):
            pass  # not base64 after all: use it as it is
    return secret.encode()


def standard_signature(msg_id: str, timestamp: int, body: bytes, secret: str) -> str:
    """``webhook-signature`` (Standard Webhooks): ``v1,`` + base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(standard_key(secret), signed, hashlib.sha256).digest()).decode()


def webhook_headers(msg_id: str, body: bytes, secret: str, now=time.time) -> dict[str, str]:
    """The headers of one attempt: a fresh timestamp and signature, the same ``webhook-id`` every time."""
    timestamp = int(now())
    return {"Content-Type": "application/json", "User-Agent": "Cutover-Notify/1",
            "X-Cutover-Signature": signature(body, secret),
            "webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": standard_signature(msg_id, timestamp, body, secret)}


def post_webhook(event_json: dict, sleep=time.sleep) -> None:
    """POST the event as JSON, signed (Standard Webhooks headers and the legacy X-Cutover-Signature);
    3 attempts with growing delays (0.5 s, then 1 s); else DeliveryError."""
    url = current_app.config.get("NOTIFY_WEBHOOK_URL")
    if not url:
        return
    body = json.dumps(event_json, sort_keys=True).encode()  # signed and sent as these very bytes
    secret = current_app.config.get("NOTIFY_WEBHOOK_SECRET") or ""
    msg_id = str(event_json["id"])
    reason = ""
    for attempt in range(1, WEBHOOK_ATTEMPTS + 1):
        try:
            headers = webhook_headers(msg_id, body, secret)
            request = urllib.request.Request(url, data=body, headers=headers, method="POST")
            with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as response:
                if 200 <= response.status < 300:
                    return
                reason = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            reason = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, TimeoutError, ValueError) as exc:  # ValueError: a malformed URL
            reason = str(getattr(exc, "reason", exc)) or exc.__class__.__name__
        if attempt < WEBHOOK_ATTEMPTS:
            sleep(0.5 * attempt)
    raise DeliveryError(f"webhook failed after {WEBHOOK_ATTEMPTS} attempts: {reason}")
