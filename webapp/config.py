"""Settings, read from the environment once, when the app or a worker starts."""
from __future__ import annotations

import fcntl
import json
import os
import secrets
from pathlib import Path
from typing import Mapping

from cryptography.fernet import Fernet

# Settings that are secrets (or may hold one, like a URL with a password). The all-in-one supervisor
# never puts them into its children's environment (/proc/<pid>/environ is readable by every process of
# the same user, test code included): it hands them over in an inherited memfd instead, see
# inherited_secrets().
SECRET_SETTINGS = ("SECRET_KEY", "CREDENTIALS_KEY", "DATABASE_URL", "REDIS_URL", "NOTIFY_WEBHOOK_SECRET",
                   "ADMIN_PASSWORD", "METRICS_TOKEN")
# Names the inherited file descriptor that holds the secret settings as a JSON object (the number is no secret).
SECRETS_FD_ENV = "CUTOVER_SECRETS_FD"
SECRETS_MEMFD_NAME = "cutover-secrets"


def _secret_file(data_dir: Path, name: str, make) -> str:
    """Return the secret stored in ``data_dir/name``, creating it (mode 0600) on first use.

    Creation uses O_EXCL so that processes starting together agree on one value.
    """
    path = data_dir / name
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process may be writing it right now
            value = path.read_text().strip()
            if value:
                return value
            import time
            time.sleep(0.02)
        raise RuntimeError(f"{path} is empty; delete it to generate a new secret")
    value = make()
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


def ensure_secrets(data_dir: str | os.PathLike, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """SECRET_KEY and CREDENTIALS_KEY from ``env`` (default: the environment), else generated once into DATA_DIR."""
    data_dir = Path(data_dir)
    env = os.environ if env is None else env
    return {
        "SECRET_KEY": env.get("SECRET_KEY")
        or _secret_file(data_dir, "secret_key", lambda: secrets.token_urlsafe(48)),
        "CREDENTIALS_KEY": env.get("CREDENTIALS_KEY")
        or _secret_file(data_dir, "credentials_key", lambda: Fernet.generate_key().decode()),
    }


def write_secrets_fd(values: Mapping[str, str]) -> int:
    """A new memfd holding ``values`` (secret settings) as JSON, sealed against change, for children to
    inherit (``pass_fds``) and read with inherited_secrets(). The caller owns (and closes) the fd."""
    unknown = set(values) - set(SECRET_SETTINGS)
    if unknown:
        raise ValueError(f"not secret settings: {sorted(unknown)}")
    fd = os.memfd_create(SECRETS_MEMFD_NAME, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        data = json.dumps(dict(values)).encode()
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS,
                    fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SEAL)
    except BaseException:
        os.close(fd)
        raise
    return fd


_inherited: dict[tuple[int, str], dict[str, str]] = {}  # (pid, fd) -> its secrets, read once per process


def inherited_secrets() -> dict[str, str]:
    """The secret settings handed over by the all-in-one supervisor in the file descriptor named by
    CUTOVER_SECRETS_FD ({} when it is unset). Read with pread from offset 0, so that every create_app() of
    the process and every forked gunicorn worker can read it; the fd is then made close-on-exec, so that
    nothing this process executes (test code) inherits it."""
    raw = os.environ.get(SECRETS_FD_ENV, "").strip()
    if not raw:
        return {}
    key = (os.getpid(), raw)
    if key not in _inherited:
        _inherited[key] = _read_secrets_fd(raw)
    return dict(_inherited[key])


def _read_secrets_fd(raw: str) -> dict[str, str]:
    problem = f"{SECRETS_FD_ENV}={raw} does not name the secrets file the all-in-one supervisor passes on"
    try:
        fd = int(raw)
        target = os.readlink(f"/proc/self/fd/{fd}")
    except (ValueError, OSError):
        raise RuntimeError(problem) from None
    if not target.startswith(f"/memfd:{SECRETS_MEMFD_NAME}"):
        raise RuntimeError(f"{problem} (it is {target})")
    size = os.fstat(fd).st_size
    data = b""
    while len(data) < size:
        chunk = os.pread(fd, size - len(data), len(data))
        if not chunk:
            break
        data += chunk
    try:
        values = json.loads(data)
    except ValueError:
        raise RuntimeError(f"{problem} (not JSON)") from None
    if not isinstance(values, dict):
        raise RuntimeError(f"{problem} (not a JSON object)")
    os.set_inheritable(fd, False)
    return {k: str(v) for k, v in values.items() if k in SECRET_SETTINGS}


MAX_RETENTION_DAYS = 36500


def retention_days(value) -> int:
    """``RETENTION_DAYS``: a whole number of days, 0 (or empty) keeping everything forever; anything else stops
    the start with a message that says what is wrong."""
    raw = "" if value is None else str(value).strip()
    if raw == "":
        return 0
    if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_RETENTION_DAYS:
        raise RuntimeError(f"RETENTION_DAYS={raw!r}: give a whole number of days from 0 to {MAX_RETENTION_DAYS} "
                           "(0 or empty: keep run logs and processed events forever)")
    return int(raw)


def database_url(data_dir: Path, env: Mapping[str, str]) -> str:
    """``DATABASE_URL``, else the SQLite file ``DATA_DIR/cutover.db``."""
    return env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'cutover.db'}"


def load(overrides: dict | None = None) -> dict:
    """The whole configuration: ``overrides`` (tests), then the secrets inherited from the all-in-one
    supervisor (inherited_secrets()), then environment variables, then defaults."""
    overrides = dict(overrides or {})
    env = {**os.environ, **inherited_secrets()}

    def _float(name: str, default: float) -> float:
        return float(env.get(name, default))

    data_dir = Path(overrides.get("DATA_DIR") or env.get("DATA_DIR", "var")).resolve()
    config = {
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": database_url(data_dir, env),
        "REDIS_URL": env.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        # Total simulated copy time of one migration, spread over its volumes by size.
        "MIGRATION_DURATION_SECONDS": _float("MIGRATION_DURATION_SECONDS", 20.0),
        # A running migration whose worker has been silent this long is marked "worker lost" (the copy
        # heartbeats every 0.5 s; bench/recovery.py measures kill -> "worker lost").
        "MIGRATION_STALE_SECONDS": _float("MIGRATION_STALE_SECONDS", 10.0),
        # How often the worker-side maintenance loop looks for lost work.
        "MAINTENANCE_INTERVAL_SECONDS": _float("MAINTENANCE_INTERVAL_SECONDS", 2.0),
        # Test runs: the environment lock's time to live (the worker's watchdog thread renews it and the run's
        # heartbeat every third of it, however long pytest stays silent; a run is lost only when both lapse),
        # the longest a run may take, and where this host's run directories live (uploads are in the database).
        "ENV_LOCK_TTL_SECONDS": _float("ENV_LOCK_TTL_SECONDS", 10.0),
        "RUN_TIMEOUT_SECONDS": _float("RUN_TIMEOUT_SECONDS", 600.0),
        # An environment's teardown (issue 14) runs after every run, even a cancelled or timed-out one, this long at most.
        "TEARDOWN_TIMEOUT_SECONDS": _float("TEARDOWN_TIMEOUT_SECONDS", 120.0),
        # A normal-priority run that has waited longer than this counts as high (no run is starved).
        "PRIORITY_AGING_MINUTES": _float("PRIORITY_AGING_MINUTES", 30.0),
        "SAMPLE_TESTS_DIR": str(Path(__file__).resolve().parent.parent / "sample_tests"),
        "RUNS_DIR": str(data_dir / "runs"),
        # Events: pending events older than this are queued again by the workers' sweeper; optional
        # webhook channel (JSON POST signed per Standard Webhooks, plus the legacy X-Cutover-Signature).
        "EVENT_SWEEP_SECONDS": _float("EVENT_SWEEP_SECONDS", 30.0),
        # Run logs, JUnit XML and per-test results of runs finished longer ago, and processed events whose
        # inbox entry was read longer ago, are deleted by the workers' maintenance loop (0: keep forever).
        "RETENTION_DAYS": env.get("RETENTION_DAYS", "90"),
        "NOTIFY_WEBHOOK_URL": env.get("NOTIFY_WEBHOOK_URL", ""),
        "NOTIFY_WEBHOOK_SECRET": env.get("NOTIFY_WEBHOOK_SECRET", ""),
        # Workers run jobs in-process; WORKER_FORK=1 forks a work horse per job (RQ's classic model).
        "WORKER_FORK": env.get("WORKER_FORK", "") in ("1", "true", "yes"),
        # Test code runs sandboxed: "auto" uses what the kernel offers (a partial sandbox is said on the run),
        # "strict" ends a run in error unless the whole sandbox applies, "off" runs test code unconfined.
        "SANDBOX": env.get("SANDBOX", "auto").strip().lower() or "auto",
        # Accounts: the first admin (created when no account exists; a random password is printed by
        # `make run` and written to DATA_DIR/initial_admin_password when ADMIN_PASSWORD is unset).
        "ADMIN_USERNAME": env.get("ADMIN_USERNAME", "admin"),
        "ADMIN_PASSWORD": env.get("ADMIN_PASSWORD", ""),
        # Behind a reverse proxy: trust its X-Forwarded-For/-Proto (client address, HTTPS for Secure cookies).
        # Log lines: "plain" (time level logger: message) or "json" (one object a line, with request_id/job_id).
        "LOG_FORMAT": env.get("LOG_FORMAT", "plain").strip().lower() or "plain",
        "TRUST_PROXY": env.get("TRUST_PROXY", "") in ("1", "true", "yes"),
        # GET /metrics also takes this as its Bearer token (for Prometheus; unset: only viewers' API tokens).
        "METRICS_TOKEN": env.get("METRICS_TOKEN", "").strip(),
        "WTF_CSRF_TIME_LIMIT": None,
        "MAX_CONTENT_LENGTH": 2 * 1024 * 1024,
    }
    config.update(overrides)
    config["RETENTION_DAYS"] = retention_days(config["RETENTION_DAYS"])
    if not (config.get("SECRET_KEY") and config.get("CREDENTIALS_KEY")):
        config.update({k: v for k, v in ensure_secrets(data_dir, env).items() if not config.get(k)})
    return config
