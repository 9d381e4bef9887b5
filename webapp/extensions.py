"""Extension objects. They hold no state of their own: ``init_app`` stores it on the app."""
from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken
from flask import Flask, current_app
from flask_wtf.csrf import CSRFProtect
from redis import Redis
from rq import Queue

from .db import Database

csrf = CSRFProtect()
db = Database()


class Vault:
    """Encrypts secrets at rest with the Fernet key ``CREDENTIALS_KEY``."""

    def init_app(self, app: Flask) -> None:
        app.extensions["vault"] = Fernet(app.config["CREDENTIALS_KEY"].encode())

    def encrypt(self, secret: str) -> str:
        return current_app.extensions["vault"].encrypt(secret.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return current_app.extensions["vault"].decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise RuntimeError("A stored secret cannot be read: was CREDENTIALS_KEY changed?") from exc


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
