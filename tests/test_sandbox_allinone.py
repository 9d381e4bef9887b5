"""The hostile test file against `make run` for real: a private (0700) DATA_DIR with its generated keys, the
embedded Redis with its password, two real workers. A user uploads tests/cases/escapes.py and runs it; every
escape must be denied in the run log, loopback networking must still work, a canary password stored in a
workload must appear in no run log, and nothing the run started may outlive it."""
from __future__ import annotations

import secrets
import time
import uuid
from pathlib import Path

import psutil
import pytest

from e2e import ROOT, allinone, wait_for  # noqa: F401  (allinone: a fixture)

pytestmark = pytest.mark.slow

ESCAPES = Path(__file__).with_name("cases") / "escapes.py"


def multipart(fields: dict[str, str], filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                 f"Content-Type: text/x-python\r\n\r\n".encode() + content + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def run_to_end(http, test_file: str) -> dict:
    created = http.post("/api/v1/runs", {"environment_id": 5, "test_files": [test_file]})
    assert created.status == 201, created
    run_id = created.json()["id"]
    return wait_for(lambda: (r := http.get(f"/api/v1/runs/{run_id}").json())["state"] not in ("queued", "running")
                    and r, timeout=90, interval=0.2, message=f"run {run_id} to end")


def command_lines() -> list[str]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        found.append(" ".join(proc.info["cmdline"] or []))
    return found


def test_a_hostile_test_file_is_denied_every_escape_in_a_private_data_dir(allinone, tmp_path):
    data_dir = tmp_path / "private"
    data_dir.mkdir(mode=0o700)
    server = allinone(data_dir=data_dir, workers=2)
    http = server.http()
    canary = f"canary-{secrets.token_hex(8)}"
    workload = http.post("/api/v1/workloads", {
        "ip": "10.66.0.9", "credentials": {"username": "admin", "password": canary, "domain": "CORP"},
        "storage": [{"name": "C:\\", "size": 40}]})
    assert workload.status == 201, workload

    first = run_to_end(http, "sample_tests/test_passing.py")  # another run, whose directory is a target too
    assert first["state"] == "success", first
    workers = [p.pid for p in server.descendants() if "worker.py" in " ".join(p.cmdline())]
    assert len(workers) == 2, [p.cmdline() for p in server.descendants()]
    redis_server = next(p for p in server.descendants() if "redis-server" in p.name())
    socket_path = next(c.laddr for c in redis_server.net_connections("unix") if c.laddr)
    marker = f"outlives-{secrets.token_hex(6)}"
    target = {"data_dir": str(data_dir), "worker_pids": workers, "repo": str(ROOT), "redis_socket": socket_path,
              "other_run_dir": str(data_dir / "runs" / str(first["id"])), "marker": marker}
    body, content_type = multipart({"directory": "attack"}, "test_escapes.py",
                                   f"TARGET = {target!r}\n".encode() + ESCAPES.read_bytes())
    uploaded = http.request("POST", "/api/v1/test-files", data=body, headers={"Content-Type": content_type})
    assert uploaded.status == 201, uploaded

    run = run_to_end(http, uploaded.json()["path"])
    log = http.get(f"/api/v1/runs/{run['id']}/log.txt").text
    failed = [t["nodeid"] for t in run["tests"] if t["outcome"] != "passed"]
    assert run["state"] == "success" and not failed, (failed, log[-6000:])
    assert run["summary"]["passed"] == len(run["tests"]) >= 25
    assert run["sandbox"]["mode"] == "landlock+pidns", run["sandbox"]
    for name in ("credentials_key", "secret_key", "cutover.db", "redis_password", "redis/redis.conf"):
        assert f"DENIED read DATA_DIR/{name}: PermissionError" in log, name  # it exists: refused, not missing
    for attempt in ("list DATA_DIR:", "list DATA_DIR/runs:", "read another run's files:", "write DATA_DIR/uploads:",
                    "write sample_tests/planted_test.py:", "write webapp/planted.py:", "write site-packages:",
                    "talk to Redis on its socket:", "use a descriptor inherited from the worker:",
                    "keep a capability:", *(f"read /proc/{pid}/environ:" for pid in workers),
                    *(f"read /proc/{pid}/mem:" for pid in workers), *(f"kill -TERM {pid}:" for pid in workers),
                    *(f"ptrace {pid}:" for pid in workers)):
        assert f"DENIED {attempt}" in log, attempt
    assert "ALLOWED loopback server and client" in log and "ALLOWED own run and temp directories" in log
    assert "b'-NOAUTH" in log  # the socket answered: Redis itself refused the password-less client
    assert not (ROOT / "sample_tests" / "planted_test.py").exists() and not (ROOT / "webapp" / "planted.py").exists()

    time.sleep(0.5)
    assert not [c for c in command_lines() if marker in c], "a process of the run outlived it"
    for run_id in (first["id"], run["id"]):
        assert canary not in http.get(f"/api/v1/runs/{run_id}/log.txt").text
    assert all(p.is_running() for p in map(psutil.Process, workers))  # no worker was signalled away
