"""`make run` for real: the all-in-one process (embedded Redis, 2 workers, gunicorn) driven over HTTP,
stopped with SIGTERM without leaving a process behind, and restarted on the same DATA_DIR. Every API call
sends a bearer token (HTTP Basic on POST /api/v1/tokens first), every page a signed-in session; on a fresh
DATA_DIR without ADMIN_PASSWORD the first admin's generated password is printed once."""
from __future__ import annotations

import json
import os
import re
import stat
import time
import urllib.parse

import psutil
import pytest
import redis
from cryptography.fernet import Fernet

from e2e import (ADMIN, ADMIN_PASSWORD, Http, allinone, basic_auth, exposed_secrets, gone,  # noqa: F401
                 wait_for)  # (allinone: a fixture)
from webapp import config as settings
from webapp.allinone import mask_url

pytestmark = pytest.mark.slow

PASSWORD = "e2e-Wl-Pa55word!"
CLOUD_PASSWORD = "e2e-Cloud-Pa55!"
WORKLOAD = {
    "ip": "10.77.0.5",
    "credentials": {"username": "admin", "password": PASSWORD, "domain": "CORP"},
    "storage": [{"name": "C:\\", "size": 40}, {"name": "D:\\", "size": 100}, {"name": "E:\\", "size": 60}],
}


def _cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return ""


def _name(proc: psutil.Process) -> str:
    try:
        return proc.name()
    except psutil.NoSuchProcess:
        return ""


# Secret settings given to `make run` in its environment: they must reach the app (SECRET_KEY/CREDENTIALS_KEY
# are not generated into DATA_DIR, the admin signs in with ADMIN_PASSWORD), but no child's environment.
GIVEN_SECRETS = {"SECRET_KEY": "e2e-given-Secret-Key-0f3c9a", "CREDENTIALS_KEY": Fernet.generate_key().decode(),
                 "NOTIFY_WEBHOOK_SECRET": "e2e-given-Webhook-Secret-77d1"}


def _redis_socket(proc: psutil.Process) -> str:
    [path] = {c.laddr for c in proc.net_connections(kind="unix") if c.laddr and c.laddr.endswith("redis.sock")}
    return path


def test_a_whole_migration_over_http_then_sigterm_stops_every_process(allinone):
    server = allinone(workers=2, MIGRATION_DURATION_SECONDS=1, **GIVEN_SECRETS)
    anonymous = Http(server.url)
    ping = anonymous.get("/ping")
    assert ping.status == 200 and ping.json()["status"] == "ok"
    refused = anonymous.post("/api/v1/workloads", WORKLOAD)
    assert refused.status == 401 and refused.json()["error"]["code"] == "unauthorized", refused
    assert anonymous.get("/api/openapi.json").status == 200
    page = anonymous.get("/workloads/")  # a page: to the sign-in form, which comes back afterwards
    landed = urllib.parse.urlsplit(page.url)
    assert landed.path == "/login" and urllib.parse.parse_qs(landed.query)["next"] == ["/workloads/"], page.url

    http = server.http()  # token by HTTP Basic, session by the /login form
    assert http.get("/api/v1/me").json()["username"] == ADMIN

    created = http.post("/api/v1/workloads", WORKLOAD)
    assert created.status == 201, created
    workload = created.json()
    assert created.headers["Location"].endswith(f"/api/v1/workloads/{workload['id']}")

    created = http.post("/api/v1/migrations", {
        "source_id": workload["id"], "selected_mount_points": ["C:\\", "D:\\"],
        "target": {"cloud_type": "aws", "cloud_credentials": {"username": "cloud", "password": CLOUD_PASSWORD}}})
    assert created.status == 201, created
    migration_id = created.json()["id"]
    assert created.json()["state"] == "not_started"

    ran = http.post(f"/api/v1/migrations/{migration_id}/run")
    assert ran.status == 202, ran
    assert ran.json()["state"] == "running"

    started = time.monotonic()
    status = wait_for(lambda: (s := http.get(f"/api/v1/migrations/{migration_id}/status").json())["finished"] and s,
                      timeout=30, interval=0.2, message="the migration to finish")
    took = time.monotonic() - started
    assert status["state"] == "success", status
    assert status["error"] is None
    assert status["progress"]["percent"] == 100.0
    assert [p["name"] for p in status["progress"]["mount_points"]] == ["C:\\", "D:\\"]
    assert took < 15, f"a 1 s migration took {took:.1f} s on 2 workers"

    migration = http.get(f"/api/v1/migrations/{migration_id}").json()
    vm = migration["target"]["target_vm"]
    assert vm is not None, migration
    assert vm["ip"] == WORKLOAD["ip"]
    assert [(m["name"], m["size"]) for m in vm["storage"]] == [("C:\\", 40), ("D:\\", 100)]
    assert vm["credentials"]["username"] == "admin"
    assert migration["started_at"] and migration["finished_at"]

    page = http.get(f"/migrations/{migration_id}")
    assert page.status == 200
    assert page.headers["Content-Type"].startswith("text/html")
    section = re.search(r'<section id="migration-status".*?</section>', page.text, re.S)
    assert section, page.text
    assert re.search(r'class="badge badge-success">\s*success\s*<', section.group(0)), section.group(0)
    assert "Target VM" in section.group(0)
    assert "hx-trigger" not in section.group(0)  # final: the status does not poll any more

    http.get("/api/v1/workloads")
    http.get(f"/api/v1/workloads/{workload['id']}")
    http.get("/api/v1/migrations")
    http.get("/workloads/")
    http.get(f"/workloads/{workload['id']}/edit")
    http.get(f"/migrations/{migration_id}/edit")  # 409 (done), but still must not leak anything
    for body in http.bodies:
        assert PASSWORD not in body and CLOUD_PASSWORD not in body

    # --- every process it started, then SIGTERM -------------------------------------------------
    def children_ready():
        kids = psutil.Process(server.pid).children()
        workers = [p for p in kids if "worker.py" in _cmdline(p)]
        return kids if len(workers) == 2 and len(kids) == 4 else None

    kids = wait_for(children_ready, timeout=10, message="redis-server, gunicorn and 2 worker.py as children")
    assert sorted(_name(p) for p in kids if "redis-server" in _name(p) + _cmdline(p)) == ["redis-server"]
    [gunicorn] = [p for p in kids if "gunicorn" in _cmdline(p)]
    assert len(gunicorn.children()) == 2  # --workers 2
    everything = server.descendants()
    pids = {p.pid for p in everything}
    assert len(pids) >= 1 + 3 + 2, [(p.pid, _cmdline(p)) for p in everything]

    # --- no secret in any child's /proc/<pid>/environ or cmdline; Redis wants its password -------
    data_dir = server.data_dir
    assert not (data_dir / "secret_key").exists() and not (data_dir / "credentials_key").exists(), \
        "the given SECRET_KEY/CREDENTIALS_KEY did not reach the children (they generated their own)"
    password_file = data_dir / "redis_password"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600, oct(password_file.stat().st_mode)
    assert stat.S_IMODE((data_dir / "redis" / "redis.conf").stat().st_mode) == 0o600
    redis_password = password_file.read_text().strip()
    assert len(redis_password) >= 32
    secrets = [*GIVEN_SECRETS.values(), ADMIN_PASSWORD, redis_password]
    findings, read = exposed_secrets(server, secrets)
    assert read >= len(pids) - 1 and findings == [], findings
    [redis_server] = [p for p in kids if "redis-server" in _name(p) + _cmdline(p)]
    sock = _redis_socket(redis_server)
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(unix_socket_path=sock, socket_timeout=2).ping()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(unix_socket_path=sock, password="not-" + redis_password, socket_timeout=2).ping()
    assert redis.Redis(unix_socket_path=sock, password=redis_password, socket_timeout=2).ping()
    # The app's children hold the secrets memfd (close-on-exec once read, so test code cannot inherit it);
    # redis-server does not.
    for proc in everything:
        fds = {int(fd): os.readlink(f"/proc/{proc.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{proc.pid}/fd")}
        memfds = [fd for fd, target in fds.items() if target.startswith("/memfd:cutover-secrets")]
        if proc.pid == redis_server.pid:
            assert memfds == [], fds
            continue
        assert len(memfds) == 1, (proc.pid, _cmdline(proc), fds)
        if proc.pid != gunicorn.pid:  # the master never loads the app, its workers (forks) do
            flags = int(re.search(r"flags:\s*(\d+)", open(f"/proc/{proc.pid}/fdinfo/{memfds[0]}").read()).group(1), 8)
            assert flags & os.O_CLOEXEC, (proc.pid, _cmdline(proc), oct(flags))

    stopping = time.monotonic()
    code = server.stop(timeout=20)
    assert code == 0, f"exit code {code}\n{server.stderr_tail()}"
    assert time.monotonic() - stopping < 20
    # The runner has been reaped; anything of its left would now belong to init: none may be left.
    assert [pid for pid in pids if not gone(pid)] == []
    assert server.leftovers() == []
    assert "[cutover] stopped" in server.stderr_tail()


def test_a_restart_on_the_same_data_dir_keeps_the_data_and_the_secrets_are_private(allinone, tmp_path):
    data_dir = tmp_path / "data"
    first = allinone(data_dir=data_dir)
    http = first.http()
    token = http.token
    created = http.post("/api/v1/workloads", WORKLOAD)
    assert created.status == 201, created
    workload = created.json()
    assert first.stop() == 0
    assert first.leftovers() == []

    for name in ("secret_key", "credentials_key", "redis_password", "redis/redis.conf"):
        path = data_dir / name
        assert path.is_file(), f"{name} was not generated into DATA_DIR"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"{name} has mode {oct(path.stat().st_mode)}"
    keys = {name: (data_dir / name).read_text() for name in ("secret_key", "credentials_key", "redis_password")}

    second = allinone(data_dir=data_dir)
    http = Http(second.url, token=token)  # the token of the first start still works
    assert http.get("/api/v1/me").status == 200
    again = http.get(f"/api/v1/workloads/{workload['id']}")
    assert again.status == 200, again
    assert again.json() == workload
    # The stored password can still be decrypted with the key read back from DATA_DIR.
    kept = http.request("PATCH", f"/api/v1/workloads/{workload['id']}", json_body={"storage": [{"name": "C:\\", "size": 41}]})
    assert kept.status == 200, kept
    assert {name: (data_dir / name).read_text() for name in keys} == keys  # not generated again
    for body in http.bodies:
        assert PASSWORD not in body
    assert second.stop() == 0
    assert second.leftovers() == []


PRINTED_PASSWORD = re.compile(r"with password (\S+)")


def test_a_fresh_data_dir_without_admin_password_prints_the_generated_one_once(allinone, tmp_path):
    data_dir = tmp_path / "data"
    first = allinone(data_dir=data_dir, admin_password=None, workers=1)
    path = data_dir / "initial_admin_password"
    assert path.is_file(), "no initial_admin_password in DATA_DIR"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"initial_admin_password has mode {oct(path.stat().st_mode)}"
    password = path.read_text().strip()
    assert len(password) >= 16

    # The supervisor tells whoever ran `make run` (stderr, next to the URL line on stdout).
    def told():
        return [line for line in first.stderr_text().splitlines()
                if "initial_admin_password" in line and password in line]

    lines = wait_for(told, timeout=5, message=f"a stderr line with the password and {path}")
    assert str(path) in lines[0], lines
    assert lines[0].startswith("[cutover] "), lines
    assert not any(password in line for line in first.output), "the password went to stdout (keep it for the URL line)"

    # It lets the admin in (and nothing else does).
    http = Http(first.url)
    assert http.request("POST", "/api/v1/tokens", json_body={"name": "x"},
                        headers={"Authorization": basic_auth(ADMIN, ADMIN_PASSWORD)}).status == 401
    http.get_token(ADMIN, password)
    assert http.get("/api/v1/me").json()["role"] == "admin"
    assert first.stop() == 0

    # A second start on the same DATA_DIR: the admin exists, so no new password is made or printed.
    second = allinone(data_dir=data_dir, admin_password=None, workers=1)
    assert path.read_text().strip() == password
    time.sleep(0.5)  # whatever the supervisor prints around its URL line has been printed
    printed = [m.group(1) for m in PRINTED_PASSWORD.finditer(second.stderr_text())]
    assert all(p == password for p in printed), f"a new password was printed on the second start: {printed}"
    assert Http(second.url).get_token(ADMIN, password)
    assert second.stop() == 0


def test_config_load_reads_the_secrets_inherited_in_a_memfd(tmp_path, monkeypatch):
    """What each child of the all-in-one does: config.load() takes the secret settings from the fd named by
    CUTOVER_SECRETS_FD (over the environment, under a test's overrides), any number of times."""
    fd = settings.write_secrets_fd({"SECRET_KEY": "from-fd", "REDIS_URL": "unix://:fd%40pw@/x/redis.sock",
                                    "ADMIN_PASSWORD": "fd-Admin-pw"})
    try:
        with pytest.raises(PermissionError):
            os.write(fd, b"x")  # sealed
        monkeypatch.setattr(settings, "_inherited", {})
        monkeypatch.setenv("DATA_DIR", str(tmp_path))
        monkeypatch.setenv("SECRET_KEY", "from-env")
        monkeypatch.setenv("DATABASE_URL", "sqlite:///from-env.db")
        monkeypatch.delenv("CREDENTIALS_KEY", raising=False)
        monkeypatch.setenv(settings.SECRETS_FD_ENV, str(fd))
        os.set_inheritable(fd, True)  # as a child gets it through pass_fds
        loaded = settings.load()
        assert (loaded["SECRET_KEY"], loaded["ADMIN_PASSWORD"]) == ("from-fd", "fd-Admin-pw")
        assert redis.connection.parse_url(loaded["REDIS_URL"])["password"] == "fd@pw"
        assert loaded["DATABASE_URL"] == "sqlite:///from-env.db"  # not in the fd: the environment's
        assert loaded["CREDENTIALS_KEY"] == (tmp_path / "credentials_key").read_text().strip()  # generated
        assert not os.get_inheritable(fd), "a process it executes would inherit the secrets"
        monkeypatch.setattr(settings, "_inherited", {})  # a second reader (another worker): pread from 0
        assert settings.load({"SECRET_KEY": "override"})["SECRET_KEY"] == "override"
        assert settings.load()["REDIS_URL"] == loaded["REDIS_URL"]
        with open(tmp_path / "other", "w") as other:  # a number that names something else fails clearly
            monkeypatch.setattr(settings, "_inherited", {})
            monkeypatch.setenv(settings.SECRETS_FD_ENV, str(other.fileno()))
            with pytest.raises(RuntimeError, match=settings.SECRETS_FD_ENV):
                settings.load()
        assert "SECRET_KEY" in settings.SECRET_SETTINGS and json.loads(os.pread(fd, 4096, 0))["SECRET_KEY"] == "from-fd"
    finally:
        os.close(fd)


def test_a_password_in_a_redis_url_is_masked_in_logs():
    assert mask_url("redis://user:s3cret@host:6379/0") == "redis://user:***@host:6379/0"
    assert mask_url("unix://:s3cret@/var/redis.sock") == "unix://:***@/var/redis.sock"
    assert mask_url("unix:///var/redis.sock?db=1&password=s3cret") == "unix:///var/redis.sock?db=1&password=***"
    assert mask_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
