"""``Supervisor``: starts Redis, the database, the workers and gunicorn in order, watches them
(restarting workers that die, up to MAX_WORKER_RESTARTS per RESTART_WINDOW), and stops them all.
See the package's docstring for what ``make run`` does and which settings it reads."""
from __future__ import annotations

import atexit
import collections
import fcntl
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from webapp.allinone.common import REPO_ROOT, StartupError, env_int, log
from webapp.allinone.embedded_redis import (find_redis_server, mask_url, redis_argv, redis_socket_path,
                                            redis_socket_url, wait_for_redis, write_redis_config)
from webapp.allinone.processes import Child, become_subreaper, reap_adopted, stop_children
from webapp.config import SECRET_SETTINGS, SECRETS_FD_ENV, _secret_file, ensure_secrets, write_secrets_fd

WEB_START_TIMEOUT = 30.0
MAX_WORKER_RESTARTS = 5  # per RESTART_WINDOW seconds
RESTART_WINDOW = 60.0
POLL_INTERVAL = 0.2


class Supervisor:
    """Starts Redis, the workers and gunicorn, watches them, and stops them all."""

    def __init__(self) -> None:
        self.data_dir = Path(os.environ.get("DATA_DIR") or "var").resolve()
        self.port = env_int("PORT", 5000, 1)
        self.worker_count = env_int("WORKERS", 2, 0)
        self.redis_url = os.environ.get("REDIS_URL", "").strip()
        self.env: dict[str, str] = {}  # the children's environment, without any secret
        self.secrets: dict[str, str] = {}  # secret settings for the children, handed over in a memfd
        self._secrets_fd: int | None = None
        self.redis: Child | None = None
        self.web: Child | None = None
        self.workers: list[Child] = []
        self.restarts: collections.deque[float] = collections.deque()
        self.stop_requested = False
        self.force_requested = False
        self._lock_file: IO[str] | None = None
        self._socket_tmpdir: str | None = None
        self._stopped = False

    # ---- signals -------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        """SIGINT/SIGTERM ask for a clean stop; a second one kills without waiting."""
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self.stop_requested:
            self.force_requested = True
        self.stop_requested = True

    # ---- start-up ------------------------------------------------------------------

    def prepare(self) -> None:
        """Create DATA_DIR, take its lock, generate the secrets it keeps, and build the children's
        environment: ours without the secret settings, which go to ``self.secrets`` instead."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock_data_dir()
        # Generated into DATA_DIR now, before the children start (they read them from there).
        ensure_secrets(self.data_dir)
        self.secrets = {k: os.environ[k] for k in SECRET_SETTINGS if os.environ.get(k)}
        if self.redis_url:
            self.secrets["REDIS_URL"] = self.redis_url
        self.env = {k: v for k, v in os.environ.items() if k not in SECRET_SETTINGS and k != SECRETS_FD_ENV}
        self.env["DATA_DIR"] = str(self.data_dir)
        self.env.setdefault("PYTHONUNBUFFERED", "1")

    def hand_over_secrets(self) -> None:
        """Write ``self.secrets`` into a memfd that the app's children inherit (the redis URL is known now)."""
        self._secrets_fd = write_secrets_fd(self.secrets)

    def _app_child(self, name: str, argv: list[str]) -> Child:
        """A child that runs the app: it inherits the secrets memfd, named by CUTOVER_SECRETS_FD."""
        assert self._secrets_fd is not None, "hand_over_secrets() first"
        env = {**self.env, SECRETS_FD_ENV: str(self._secrets_fd)}
        return Child(name, argv, env, REPO_ROOT, pass_fds=(self._secrets_fd,))

    def _lock_data_dir(self) -> None:
        """Refuse to run twice on one DATA_DIR (two Redis servers on one AOF would clash)."""
        self._lock_file = open(self.data_dir / ".allinone.lock", "w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StartupError(
                f"another Cutover is already running with DATA_DIR={self.data_dir}"
            ) from None

    def start_redis(self) -> None:
        """Start the embedded Redis (AOF persistence in DATA_DIR/redis) and wait for PING."""
        if self.redis_url:
            log(f"using Redis at {mask_url(self.redis_url)}")
            return
        binary = find_redis_server()
        redis_dir = self.data_dir / "redis"
        redis_dir.mkdir(parents=True, exist_ok=True)
        sock, self._socket_tmpdir = redis_socket_path(redis_dir)
        if sock.exists() or sock.is_symlink():
            sock.unlink()  # stale: the DATA_DIR lock says no other Redis uses it
        logfile = redis_dir / "redis.log"
        password = _secret_file(self.data_dir, "redis_password", lambda: secrets.token_urlsafe(32))
        argv = redis_argv(binary, write_redis_config(redis_dir, password), sock, redis_dir, logfile)
        self.redis = Child("redis-server", argv, self.env, REPO_ROOT)
        self.redis.start()
        log(f"started redis-server (pid {self.redis.pid}), data in {redis_dir}")
        wait_for_redis(self.redis, sock, logfile, password, lambda: self.stop_requested)
        self.redis_url = redis_socket_url(password, sock)
        self.secrets["REDIS_URL"] = self.redis_url

    def init_database(self) -> None:
        """Run create_app() once in a subprocess: the schema is upgraded and the first admin exists before the children start."""
        log("initialising the database")
        child = self._app_child("database initialisation",
                                [sys.executable, "-c", "from webapp import create_app; create_app()"])
        result = subprocess.run(child.argv, cwd=child.cwd, env=child.env, pass_fds=child.pass_fds)
        if result.returncode != 0:
            raise StartupError(
                f"database initialisation (create_app()) failed with exit code {result.returncode}"
            )

    def start_workers(self) -> None:
        """Start WORKERS RQ worker processes (worker.py in the repository root)."""
        for number in range(1, self.worker_count + 1):
            worker = self._app_child(f"worker {number}", [sys.executable, "worker.py"])
            worker.start()
            log(f"started {worker.name} (pid {worker.pid})")
            self.workers.append(worker)

    def start_web(self) -> None:
        """Start gunicorn on 127.0.0.1:PORT with the settings production uses too (gunicorn.conf.py:
        threaded workers, access log, no control socket); only the address is given per run."""
        argv = [
            sys.executable, "-m", "gunicorn",
            "-c", str(REPO_ROOT / "gunicorn.conf.py"),
            "--bind", f"127.0.0.1:{self.port}",  # wins over the file's WEB_BIND
            "wsgi:app",
        ]
        self.web = self._app_child("gunicorn", argv)  # its workers are forks: the master keeps the fd
        self.web.start()
        log(f"started gunicorn (pid {self.web.pid}) on 127.0.0.1:{self.port}")

    def wait_for_web(self) -> None:
        """Wait until GET /ping answers 200, watching the other children meanwhile."""
        url = f"http://127.0.0.1:{self.port}/ping"
        deadline = time.monotonic() + WEB_START_TIMEOUT
        last_error = "no answer yet"
        while time.monotonic() < deadline and not self.stop_requested:
            self.check_children()
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
                    last_error = f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                last_error = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                last_error = str(getattr(exc, "reason", exc))
            time.sleep(0.2)
        if not self.stop_requested:
            raise StartupError(
                f"{url} did not answer 200 within {WEB_START_TIMEOUT:.0f} s (last: {last_error})"
            )

    # ---- supervision ---------------------------------------------------------------

    def check_children(self) -> None:
        """Restart workers that died; raise StartupError if gunicorn or Redis died."""
        reap_adopted(self._children())
        for child in (self.redis, self.web):
            if child is not None and (code := child.exit_code()) is not None:
                raise StartupError(f"{child.name} (pid {child.pid}) exited with code {code}")
        for worker in self.workers:
            code = worker.exit_code()
            if code is None:
                continue
            now = time.monotonic()
            while self.restarts and now - self.restarts[0] > RESTART_WINDOW:
                self.restarts.popleft()
            if len(self.restarts) >= MAX_WORKER_RESTARTS:
                raise StartupError(
                    f"{worker.name} exited with code {code}; workers were already restarted "
                    f"{MAX_WORKER_RESTARTS} times in the last {RESTART_WINDOW:.0f} s, giving up"
                )
            self.restarts.append(now)
            worker.start()
            log(f"{worker.name} exited with code {code}; restarted it (pid {worker.pid})")

    def supervise(self) -> None:
        """Watch the children until a signal asks to stop (returns) or one fails (raises)."""
        while not self.stop_requested:
            self.check_children()
            time.sleep(POLL_INTERVAL)

    def _children(self) -> list[Child]:
        return [c for c in [self.web, *self.workers, self.redis] if c is not None]

    # ---- shut-down -----------------------------------------------------------------

    def _stop(self, children: list[Child], spare: Child | None) -> None:
        """Stop ``children`` and every other descendant except ``spare``'s (processes.stop_children)."""
        stop_children(children, spare, self._children(), lambda: self.force_requested)

    def stop_all(self) -> None:
        """Stop gunicorn and the workers (and what they started), then Redis last.

        Safe to call more than once (it runs from ``finally`` and from atexit)."""
        if self._stopped:
            return
        self._stopped = True
        self.stop_requested = True
        self._stop([c for c in [self.web, *self.workers] if c is not None], spare=self.redis)
        # Redis last, with SIGTERM first, so that it flushes its AOF.
        self._stop([self.redis] if self.redis is not None else [], spare=None)
        if self._socket_tmpdir:
            shutil.rmtree(self._socket_tmpdir, ignore_errors=True)
        if self._secrets_fd is not None:
            os.close(self._secrets_fd)
            self._secrets_fd = None
        if self._lock_file is not None:
            self._lock_file.close()

    def how_to_sign_in(self, password_file: Path, existed: bool) -> str:
        """The first start prints the generated admin password once (Jenkins-style); later starts say where it is."""
        admin = self.env.get("ADMIN_USERNAME") or "admin"
        if password_file.exists() and not existed:
            password = password_file.read_text().strip()
            return f"Sign in as {admin} with password {password} (also in {password_file}; change it on /account)"
        if password_file.exists():
            return f"Sign in at http://127.0.0.1:{self.port}/login (the first admin's password is in {password_file})"
        if self.secrets.get("ADMIN_PASSWORD"):
            return f"Sign in at http://127.0.0.1:{self.port}/login as {admin} with the ADMIN_PASSWORD you set"
        return f"Sign in at http://127.0.0.1:{self.port}/login with your account"

    def run(self) -> int:
        """Start everything, print the URL and how to sign in, supervise; return the exit code."""
        self.install_signal_handlers()
        atexit.register(self.stop_all)
        become_subreaper()
        try:
            self.prepare()
            self.start_redis()
            self.hand_over_secrets()
            first_password = self.data_dir / "initial_admin_password"
            had_password_file = first_password.exists()
            if not self.stop_requested:
                self.init_database()
            if not self.stop_requested:
                self.start_workers()
                self.start_web()
                self.wait_for_web()
            if not self.stop_requested:
                print(f"Cutover is running on http://127.0.0.1:{self.port}  (Ctrl-C to stop)",
                      flush=True)
                log(self.how_to_sign_in(first_password, had_password_file))
                self.supervise()
            log("stopping")
            return 0
        except StartupError as exc:
            log(f"error: {exc}")
            log("stopping everything")
            return 1
        finally:
            self.stop_all()
            log("stopped")


def main() -> int:
    """Entry point of ``python -m webapp.allinone``."""
    try:
        supervisor = Supervisor()
    except StartupError as exc:
        log(f"error: {exc}")
        return 1
    return supervisor.run()
