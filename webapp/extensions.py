"""Extension objects. They hold no state of their own: ``init_app`` stores it on the app."""
from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import Flask, current_app
from flask_wtf.csrf import CSRFProtect
from redis import Redis
from rq import Queue

from .db import Database

csrf = CSRFProtect()
db = Database()


class VaultKeyError(RuntimeError):
    """A stored secret cannot be read with any key of ``CREDENTIALS_KEY``."""


def credential_keys(value: str) -> MultiFernet:
    """``CREDENTIALS_KEY``: one or more comma-separated Fernet keys; the first encrypts, all decrypt."""
    parts = [part.strip() for part in (value or "").split(",")]
    if not any(parts):
        raise RuntimeError("CREDENTIALS_KEY is empty: give one or more comma-separated Fernet keys")
    keys = []
    for number, part in enumerate(parts, 1):
        try:
            keys.append(Fernet(part.encode()))
        except (ValueError, TypeError):
            raise RuntimeError(
                f"CREDENTIALS_KEY: key {number} of {len(parts)} is not a Fernet key (32 url-safe base64-encoded "
                "bytes; make one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())')") from None
    return MultiFernet(keys)


class Vault:
    """Encrypts secrets at rest with ``CREDENTIALS_KEY``: comma-separated Fernet keys, the first encrypts and
    every one decrypts (``MultiFernet``), so a key can be rotated: prepend the new one, run
    ``flask --app wsgi rotate-credentials``, then drop the old one."""

    def init_app(self, app: Flask) -> None:
        app.extensions["vault"] = credential_keys(app.config["CREDENTIALS_KEY"])

    def encrypt(self, secret: str) -> str:
        return current_app.extensions["vault"].encrypt(secret.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return current_app.extensions["vault"].decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise VaultKeyError("A stored secret cannot be read: was CREDENTIALS_KEY changed?") from exc

    def rotate(self, token: str) -> str:
        """The token encrypted again with the first key (its timestamp kept); VaultKeyError if unreadable."""
        try:
            return current_app.extensions["vault"].rotate(token.encode()).decode()
        except InvalidToken as exc:
            raise VaultKeyError("A stored secret cannot be read: was CREDENTIALS_KEY changed?") from exc


class Queues:
    """The Redis connection and the RQ queues, passed ``connection=`` explicitly (RQ 2)."""

    NAMES = ("default",)  # one queue: every worker can take any job

    def init_app(self, app: Flask) -> None:
        connection = Redis.from_url(
            app.config["REDIS_URL"], socket_connect_timeout=2, socket_timeout=10, health_check_interval=30
        )
        app.extensions["queues"] = {n: Queue(n, connection=connection) for n in self.NAMES}
        app.extensions["redis"] = connection

    @property
    def redis(self) -> Redis:
        return current_app.extensions["redis"]

    def get(self, name: str = "default") -> Queue:
        return current_app.extensions["queues"][name]


vault = Vault()
queues = Queues()
