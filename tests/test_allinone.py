"""`make run` for real: the all-in-one process (embedded Redis, 2 workers, gunicorn) driven over HTTP,
stopped with SIGTERM without leaving a process behind, and restarted on the same DATA_DIR. Every API call
sends a bearer token (HTTP Basic on POST /api/v1/tokens first), every page a signed-in session; on a fresh
DATA_DIR without ADMIN_PASSWORD the first admin's generated password is printed once."""
from __future__ import annotations

import re
import stat
import time
import urllib.parse

import psutil
import pytest

from e2e import ADMIN, ADMIN_PASSWORD, Http, allinone, basic_auth, gone, wait_for  # noqa: F401  (allinone: a fixture)

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


def test_a_whole_migration_over_http_then_sigterm_stops_every_process(allinone):
    server = allinone(workers=2, MIGRATION_DURATION_SECONDS=1)
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

    for name in ("secret_key", "credentials_key"):
        path = data_dir / name
        assert path.is_file(), f"{name} was not generated into DATA_DIR"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"{name} has mode {oct(path.stat().st_mode)}"
    keys = {name: (data_dir / name).read_text() for name in ("secret_key", "credentials_key")}

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
