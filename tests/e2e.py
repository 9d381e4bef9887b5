"""End-to-end helpers shared by test_allinone.py and test_browser.py (not a conftest: import it).

``AllInOne`` starts the real all-in-one process exactly as ``make run`` does
(``python -m webapp.allinone`` in the repository root), waits for the one URL line it prints on
stdout, and stops it with SIGTERM like Ctrl-C would. ``Http`` is a tiny urllib client that
remembers every body it received, so a test can check that a secret never came back.

Secret settings (``SECRET_KEY``, ``REDIS_URL``, …) of the test run's own environment are not passed on; give one as a
keyword (``allinone(SECRET_KEY=...)``) to start the process with it. ``exposed_secrets`` finds secrets in the
environment or command line of the processes it started.

Accounts: the process is started with ``ADMIN_PASSWORD`` (unless told otherwise), so its first admin is
``ADMIN``/``ADMIN_PASSWORD``. ``Http.as_admin(url)`` (or ``instance.http()``) trades that password for an API token
(HTTP Basic on ``POST /api/v1/tokens``) sent on every ``/api/`` call, and signs in through the /login form for the
pages (a cookie jar). ``sign_in(page, username, password)`` does the same in a Playwright page.
"""
from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import base64
import html
import http.cookiejar
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
URL_LINE = re.compile(r"Cutover is running on (http://127\.0\.0\.1:\d+)\s+\(Ctrl-C to stop\)")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
ADMIN, ADMIN_PASSWORD = "admin", "e2e-Admin-Pa55word!"

# Settings that would make the process use something other than its own DATA_DIR and embedded Redis.
_DROPPED_ENV = ("REDIS_URL", "DATABASE_URL", "TEST_DATABASE_URL", "SECRET_KEY", "CREDENTIALS_KEY",
                "DATA_DIR", "PORT", "WORKERS", "ADMIN_USERNAME", "ADMIN_PASSWORD")


def _die_with_test_run():
    """preexec_fn: if pytest itself is SIGKILLed, the kernel SIGTERMs the runner, which stops its children."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (ended, or a zombie waiting to be reaped)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


class AllInOne:
    """One ``python -m webapp.allinone`` process on ``data_dir`` and ``port``. ``admin_password``: the
    ``ADMIN_PASSWORD`` it gets (None: none, so a fresh DATA_DIR gets a generated one)."""

    def __init__(self, data_dir: Path, port: int, workers: int = 2, admin_password: str | None = ADMIN_PASSWORD,
                 **env: str | int | float) -> None:
        self.data_dir, self.port, self.workers = Path(data_dir), port, workers
        self.admin_password = admin_password
        self.extra_env = {k: str(v) for k, v in env.items()}
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None
        self.output: list[str] = []  # stdout of the runner and its children (gunicorn access log, workers)
        self.returncode: int | None = None
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None
        self._stderr = None
        self._known: set[int] = set()  # every descendant pid ever seen, for the orphan check

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"allinone-{self.port}.log"

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
        env.update(DATA_DIR=str(self.data_dir), PORT=str(self.port), WORKERS=str(self.workers),
                   PYTHONUNBUFFERED="1", ADMIN_USERNAME=ADMIN, **self.extra_env)
        if self.admin_password is not None:
            env["ADMIN_PASSWORD"] = self.admin_password
        return env

    def http(self, username: str = ADMIN, password: str | None = None) -> "Http":
        """A client signed in as ``username`` (default: the admin) for the API (token) and the pages (session)."""
        return Http.signed_in(self.url, username, password if password is not None else self.admin_password)

    def stderr_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # ---- start ------------------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> "AllInOne":
        """Start the process and return once it printed its URL line; raise (after stopping it) if not."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self._ready.clear()
        self.output = []
        self.returncode = None
        self._stderr = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "webapp.allinone"], cwd=ROOT, env=self.environment(),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr,
            preexec_fn=_die_with_test_run(),
        )
        # Keep reading stdout for the whole life of the process: the children share the pipe,
        # and a full pipe would block gunicorn's access log.
        self._reader = threading.Thread(target=self._read_stdout, args=(self.proc,), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                why = (f"exited with code {self.proc.returncode}" if self.proc.poll() is not None
                       else f"printed no URL line within {timeout:.0f} s")
                self.stop()
                raise RuntimeError(f"webapp.allinone {why}\n--- stderr ---\n{self.stderr_tail()}"
                                   f"\n--- stdout ---\n{''.join(self.output[-30:])}")
        self.remember_descendants()
        return self

    def _read_stdout(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode(errors="replace")
            self.output.append(line)
            match = URL_LINE.search(line)
            if match and match.group(1) == self.url:
                self._ready.set()
        proc.stdout.close()

    def stderr_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(none)"

    # ---- processes --------------------------------------------------------------------------

    def descendants(self) -> list[psutil.Process]:
        """Every living process below the runner."""
        if self.proc is None:
            return []
        try:
            found = psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        self._known.update(p.pid for p in found)
        return found

    def remember_descendants(self) -> set[int]:
        self.descendants()
        return set(self._known)

    # ---- stop -------------------------------------------------------------------------------

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM the runner (as Ctrl-C/`kill` would) and wait for it; SIGKILL everything if it hangs.

        Returns the runner's exit code (None if it had to be killed). Safe to call twice."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.remember_descendants()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.returncode = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.returncode = None
                self.kill_all()
        else:
            self.returncode = self.proc.returncode
        self._cleanup()
        return self.returncode

    def kill_all(self) -> None:
        """Last resort (and teardown safety net): SIGKILL the runner and every descendant ever seen."""
        pids = self.remember_descendants()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        for pid in pids:
            if not gone(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

    def leftovers(self) -> list[int]:
        """Descendants seen at some point that still run (should be none once stopped)."""
        return sorted(pid for pid in self._known if not gone(pid))

    def _cleanup(self) -> None:
        if self._reader is not None:
            self._reader.join(5)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> "AllInOne":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        self.kill_all()  # nothing should be left; if something is, do not leave it behind


class Response:
    def __init__(self, status: int, headers, body: bytes, url: str = "") -> None:
        self.status, self.headers, self.body, self.url = status, headers, body, url

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    def json(self):
        return json.loads(self.body) if self.body else None

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.text[:300]!r}>"


CSRF_FIELD = re.compile(r'<input[^>]*name="csrf_token"[^>]*value="([^"]*)"|<input[^>]*value="([^"]*)"[^>]*name="csrf_token"')


def basic_auth(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


class Http:
    """Plain urllib against a running instance; no redirects are hidden except for GETs of pages (and the
    303 after a form POST). ``token``: sent as ``Authorization: Bearer`` on every ``/api/`` call that brings no
    Authorization of its own. Cookies are kept (the session of ``sign_in_web``)."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        self.base_url = base_url
        self.token = token
        self.bodies: list[str] = []  # every response body, to check that secrets never come back
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    @classmethod
    def signed_in(cls, base_url: str, username: str = ADMIN, password: str = ADMIN_PASSWORD) -> "Http":
        client = cls(base_url)
        client.get_token(username, password)
        client.sign_in_web(username, password)
        return client

    @classmethod
    def as_admin(cls, base_url: str, password: str = ADMIN_PASSWORD) -> "Http":
        return cls.signed_in(base_url, ADMIN, password)

    def get_token(self, username: str, password: str, name: str = "e2e", role: str | None = None) -> str:
        """``POST /api/v1/tokens`` with HTTP Basic; the token (shown once) is sent from now on."""
        body = {"name": name, **({"role": role} if role else {})}
        created = self.request("POST", "/api/v1/tokens", json_body=body,
                               headers={"Authorization": basic_auth(username, password)})
        assert created.status == 201, created
        self.token = created.json()["token"]
        return self.token

    def sign_in_web(self, username: str, password: str) -> Response:
        """Sign in through the /login form (its CSRF token included), as a browser would; the session cookie is kept."""
        form = self.get("/login")
        assert form.status == 200, form
        found = CSRF_FIELD.search(form.text)
        assert found, "no csrf_token in the /login form"
        done = self.form("/login", {"csrf_token": html.unescape(found.group(1) or found.group(2)),
                                    "username": username, "password": password, "save": "Sign in"})
        assert done.status == 200 and not urllib.parse.urlsplit(done.url).path.startswith("/login"), \
            f"signing in as {username} failed: {done}"
        return done

    def create_user(self, username: str, password: str, role: str = "viewer") -> dict:
        created = self.post("/api/v1/users", {"username": username, "password": password, "role": role})
        assert created.status == 201, created
        return created.json()

    def request(self, method: str, path: str, json_body=None, timeout: float = 10.0, headers: dict | None = None,
                data: bytes | None = None) -> Response:
        if json_body is not None:
            data = json.dumps(json_body).encode()
            sent = {"Content-Type": "application/json", "Accept": "application/json"}
        else:
            sent = {"Accept": "*/*"}
        sent.update(headers or {})
        if self.token and path.startswith("/api/") and not any(k.lower() == "authorization" for k in sent):
            sent["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.base_url + path, data=data, method=method, headers=sent)
        try:
            with self.opener.open(req, timeout=timeout) as resp:
                response = Response(resp.status, resp.headers, resp.read(), resp.url)
        except urllib.error.HTTPError as exc:
            response = Response(exc.code, exc.headers, exc.read(), exc.url)
        self.bodies.append(response.text)
        return response

    def form(self, path: str, fields: dict, **kw) -> Response:
        """A urlencoded form POST (the 303 that answers it is followed with a GET, as a browser does)."""
        return self.request("POST", path, data=urllib.parse.urlencode(fields).encode(),
                            headers={"Content-Type": "application/x-www-form-urlencoded"}, **kw)

    def get(self, path: str, **kw) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, json_body=None, **kw) -> Response:
        return self.request("POST", path, json_body=json_body if json_body is not None else {}, **kw)

    def delete(self, path: str, **kw) -> Response:
        return self.request("DELETE", path, **kw)


def sign_in(page, username: str = ADMIN, password: str = ADMIN_PASSWORD, next_path: str | None = None) -> None:
    """Sign a Playwright page in through the /login form (as a person would), then wait to be let in."""
    page.goto("/login" + (f"?next={urllib.parse.quote(next_path)}" if next_path else ""))
    page.fill("#username", username)
    page.fill("#password", password)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    path = urllib.parse.urlsplit(page.url).path
    assert not path.startswith("/login"), f"signing in as {username} failed: still on {page.url}"


def exposed_secrets(instance: AllInOne, values) -> tuple[list[str], int]:
    """Which of ``values`` show in /proc/<pid>/environ or /proc/<pid>/cmdline of a process below the runner
    (both readable by any process of the user, test code included): ``(findings, processes read)``."""
    findings, read = [], 0
    for proc in instance.descendants():
        try:
            parts = {part: Path(f"/proc/{proc.pid}/{part}").read_bytes() for part in ("environ", "cmdline")}
        except OSError:
            continue  # it just ended
        read += 1
        command = parts["cmdline"].replace(b"\0", b" ")[:80].decode(errors="replace")
        for part, data in parts.items():
            findings += [f"/proc/{proc.pid}/{part} ({command}) holds {value[:6]}..."
                         for value in values if value and value.encode() in data]
    return findings, read


def wait_for(predicate, timeout: float, interval: float = 0.1, message: str = "condition"):
    """Poll ``predicate`` until truthy; raise AssertionError with ``message`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


@pytest.fixture
def allinone(tmp_path):
    """A factory: ``allinone(data_dir=None, **env)`` → a started AllInOne. Every instance is stopped at
    teardown, even when the test failed, and whatever it started is killed if it outlived it."""
    from conftest import free_port

    started: list[AllInOne] = []

    def start(data_dir: Path | None = None, workers: int = 2, admin_password: str | None = ADMIN_PASSWORD,
              **env) -> AllInOne:
        instance = AllInOne(data_dir or tmp_path / "data", free_port(), workers=workers,
                            admin_password=admin_password, **env)
        started.append(instance)
        return instance.start()

    yield start
    for instance in started:
        instance.stop()
    for instance in started:
        instance.kill_all()


def serve(tmp_path_factory, name: str, workers: int = 2, users=(), **env):
    """For a module-scoped fixture: one all-in-one instance, always stopped, and nothing left behind.
    ``users``: ``(username, password, role)`` accounts the admin creates through the API once it runs."""
    from conftest import free_port

    instance = AllInOne(tmp_path_factory.mktemp(name) / "data", free_port(), workers=workers, **env)
    try:
        instance.start()
        if users:
            admin = instance.http()
            for username, password, role in users:
                admin.create_user(username, password, role)
        yield instance
    finally:
        instance.stop()
        instance.kill_all()
    assert instance.leftovers() == []
