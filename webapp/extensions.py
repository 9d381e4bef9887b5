"""Extension objects. They hold no state of their own: ``init_app`` stores it on the app."""
from __future__ import annotations

import logging
from typing import Any, Callable, Iterable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import Flask, current_app
from flask_wtf.csrf import CSRFProtect
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus

from . import logs
from .db import Database
from .domain.errors import VaultKeyError

log = logging.getLogger(__name__)

csrf = CSRFProtect()
db = Database()


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


# --- jobs: the one way in, the one way to read them, the one way to cancel ------------------------------

def enqueue(fn: Callable[..., Any], *ids: int | str, job_id: str, queue: str = "default", **rq_options) -> Job:
    """Queue ``fn(*ids)`` under ``job_id``. ``fn`` is the job function itself (RQ stores its dotted path);
    its arguments are ids only: the job loads everything else, secrets included, inside the worker.
    ``rq_options``: ``job_timeout``, ``result_ttl``, ``failure_ttl``... The current request id (of the click,
    or of the job that queues this one) goes into the job's meta: the worker logs it again while the job runs.
    Raises ``RedisError``: the caller knows what stays safe meanwhile."""
    if not all(isinstance(i, (int, str)) and not isinstance(i, bool) for i in ids):
        raise TypeError(f"a job takes ids only, not {ids!r}")
    request_id = logs.current_request_id()  # the click (or the job) that queued it: the worker logs it again
    if request_id:
        rq_options["meta"] = {**(rq_options.get("meta") or {}), "request_id": request_id}
    return queues.get(queue).enqueue(fn, *ids, job_id=job_id, **rq_options)


def job_statuses(job_ids: Iterable[str | None]) -> list[JobStatus | None]:
    """The RQ status of each job, in order (one round trip); None where RQ has no such job (no id, expired,
    lost with a Redis restart) or where Redis cannot be asked now (logged: the caller's next pass asks again)."""
    job_ids = list(job_ids)
    wanted = [i for i in job_ids if i]
    try:
        try:
            jobs = Job.fetch_many(wanted, connection=queues.redis) if wanted else []
        except NoSuchJobError:  # a job's hash is half gone (expiring): read them one by one
            jobs = [_fetch(i) for i in wanted]
    except RedisError as exc:
        log.warning("cannot read the status of %d job(s) now, Redis unavailable: %s", len(wanted), exc)
        return [None] * len(job_ids)
    found = dict(zip(wanted, jobs))
    return [found[i].get_status(refresh=False) if found.get(i) else None for i in job_ids]


def _fetch(job_id: str) -> Job | None:
    try:
        return Job.fetch(job_id, connection=queues.redis)
    except NoSuchJobError:
        return None


def job_status(job_id: str | None) -> JobStatus | None:
    """The RQ status of one job; None when RQ has no such job or Redis cannot be asked (see ``job_statuses``)."""
    return job_statuses([job_id])[0]


def cancel_job(job_id: str | None) -> bool:
    """Take a job out of its queue, best effort (every job checks its record anyway): False when there was no
    such job, it was cancelled already, or Redis cannot be asked now."""
    if not job_id:
        return False
    try:
        Job.fetch(job_id, connection=queues.redis).cancel()
    except (NoSuchJobError, InvalidJobOperation):
        return False
    except RedisError as exc:
        log.warning("cannot cancel job %s now, Redis unavailable: %s", job_id, exc)
        return False
    return True
