"""The sandbox around test code, in a worker in this process: what the plan allows, every mode as a user sees it
(run JSON and page), a sandbox that cannot be had, and the hostile test file under a partial sandbox. The same
hostile file against the real all-in-one process is in test_sandbox_allinone.py."""
from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from webapp.runs import sandbox
from webapp.runs.sandbox import Probe

ESCAPES = Path(__file__).with_name("cases") / "escapes.py"
QUICK = b"def test_quick():\n    assert 1 + 1 == 2\n"


def upload(client, body: bytes, name: str = "test_quick.py", directory: str = "sandbox") -> str:
    response = client.post("/api/v1/test-files", data={"directory": directory, "file": (io.BytesIO(body), name),
                                                       "overwrite": "true"}, content_type="multipart/form-data")
    assert response.status_code == 201, response.json
    return response.json["path"]


def run_to_end(client, work, path: str) -> dict:
    created = client.post("/api/v1/runs", json={"environment_id": 3, "test_files": [path]})
    assert created.status_code == 201, created.json
    work()
    body = client.get(f"/api/v1/runs/{created.json['id']}").json
    assert body["state"] not in ("queued", "running"), body
    return body


@pytest.fixture
def forced(monkeypatch):
    """``forced(landlock=False, pidns=False)``: the worker's probe finds only what it is told to."""

    real = sandbox.probe()

    def force(landlock: bool = True, pidns: bool = True) -> None:
        monkeypatch.setattr(sandbox, "probe", lambda: Probe(
            real.landlock_abi if landlock else 0, None if landlock else "no Landlock (forced by the test)",
            real.namespace_prefix if pidns else None, None if pidns else "no PID namespace (forced by the test)",
            real.root))

    return force


# ---- the plan, as plain functions ----------------------------------------------------------------

def test_allow_except_opens_everything_but_the_excluded_path(tmp_path):
    for name in ("a", "b/c", "b/d", "b/e/f"):
        (tmp_path / name).mkdir(parents=True)
    allowed = sandbox.allow_except(str(tmp_path), [str(tmp_path / "b" / "e")])
    assert sorted(allowed) == sorted(str(tmp_path / n) for n in ("a", "b/c", "b/d"))
    assert sandbox.allow_except(str(tmp_path), [str(tmp_path) + "-elsewhere"]) == [str(tmp_path)]
    assert sandbox.allow_except(str(tmp_path / "a"), [str(tmp_path)]) == []


def test_the_read_only_rules_never_reach_data_dir_or_the_etc_secrets(tmp_path):
    data_dir = os.path.realpath(sandbox.interpreter_paths()[0]) + "/pretend-data-dir"  # inside an allowed tree
    rules = sandbox.read_only_rules(data_dir)
    paths = [path for path, _ in rules]
    assert not any(sandbox.within(data_dir, p) for p in paths)
    assert not any(sandbox.within("/etc/shadow", p) or sandbox.within("/etc/ssh", p) for p in paths)
    assert "/etc/hosts" in paths and ("/dev/null", "dev") in rules


def test_a_private_data_dir_keeps_a_root_run_at_uid_0_and_says_why():
    base = Path(tempfile.mkdtemp())  # pytest's own temporary directories are private already
    base.chmod(0o755)
    data_dir = base / "private"
    (data_dir / "runs" / "1").mkdir(parents=True)
    data_dir.chmod(0o700)
    account, note = sandbox.unprivileged_account(data_dir / "runs" / "1")
    assert account is None and note.startswith("uid 0 kept, every capability dropped: nobody cannot reach")
    assert not sandbox.reachable_by_others(str(data_dir / "runs"))
    data_dir.chmod(0o755)
    try:
        assert sandbox.reachable_by_others(str(data_dir / "runs"))
    finally:
        shutil.rmtree(base)


def test_the_modes(tmp_path, forced):
    run_dir = tmp_path / "runs" / "1"
    run_dir.mkdir(parents=True)
    off = sandbox.plan("off", str(tmp_path), run_dir, 60)
    assert off.mode == "off" and off.prefix == [] and "unconfined" in off.detail
    forced(pidns=False)
    partial = sandbox.plan("auto", str(tmp_path), run_dir, 60)
    assert partial.mode == "landlock" and "Missing: no PID namespace (forced by the test)" in partial.detail
    assert ("/proc", "ro") not in partial.boot["rules"]  # without its own /proc, /proc stays closed
    with pytest.raises(sandbox.SandboxUnavailable, match="SANDBOX=strict and no PID namespace"):
        sandbox.plan("strict", str(tmp_path), run_dir, 60)
    forced(landlock=False)
    namespaces_only = sandbox.plan("auto", str(tmp_path), run_dir, 60)
    assert namespaces_only.mode == "pidns" and namespaces_only.prefix and namespaces_only.boot["landlock_abi"] == 0
    assert "Missing: no Landlock (forced by the test)" in namespaces_only.detail
    forced(landlock=False, pidns=False)
    with pytest.raises(sandbox.SandboxUnavailable, match="no Landlock .*; no PID namespace"):
        sandbox.plan("auto", str(tmp_path), run_dir, 60)


# ---- as a user sees it ---------------------------------------------------------------------------

def test_a_run_says_how_it_was_sandboxed_in_its_json_and_on_its_page(client, work):
    if sandbox.probe().landlock_abi == 0 or sandbox.probe().namespace_prefix is None:
        pytest.skip(f"this machine offers a partial sandbox only: {sandbox.probe()}")
    body = run_to_end(client, work, upload(client, QUICK))
    assert body["state"] == "success", body
    assert body["sandbox"]["mode"] == "landlock+pidns"
    assert f"Landlock ABI {sandbox.probe().landlock_abi}" in body["sandbox"]["detail"]
    page = client.get(f"/runs/{body['id']}").get_data(as_text=True)
    assert "landlock+pidns" in page and "Sandbox off" not in page
    assert "# sandbox: landlock+pidns" in client.get(f"/api/v1/runs/{body['id']}/log.txt").get_data(as_text=True)


def test_sandbox_off_is_said_on_the_run_page_and_in_the_json(app, client, work):
    app.config["SANDBOX"] = "off"
    body = run_to_end(client, work, upload(client, QUICK))
    assert body["state"] == "success"
    assert body["sandbox"]["mode"] == "off" and "SANDBOX=off" in body["sandbox"]["detail"]
    assert "Sandbox off (SANDBOX=off)" in client.get(f"/runs/{body['id']}").get_data(as_text=True)


def test_without_any_sandbox_a_run_ends_in_error_and_runs_no_test_code(client, work, forced, app):
    forced(landlock=False, pidns=False)
    marker = Path(app.config["DATA_DIR"]) / "ran"
    body = run_to_end(client, work, upload(client, f"def test_x():\n    open({str(marker)!r}, 'w')\n".encode()))
    assert body["state"] == "error"
    assert body["error"] == ("sandbox unavailable: no Landlock (forced by the test); "
                             "no PID namespace (forced by the test)")
    assert body["sandbox"]["mode"] == "unavailable" and not marker.exists()
    page = client.get(f"/runs/{body['id']}").get_data(as_text=True)
    assert "sandbox unavailable: no Landlock (forced by the test)" in page


def test_strict_refuses_a_partial_sandbox(client, work, forced, app):
    app.config["SANDBOX"] = "strict"
    forced(pidns=False)
    body = run_to_end(client, work, upload(client, QUICK))
    assert body["state"] == "error" and body["error"].startswith("sandbox unavailable: SANDBOX=strict and no PID")


def test_a_partial_sandbox_still_denies_the_hostile_test_file(client, work, forced, app):
    """Landlock without a PID namespace (a laptop that forbids user namespaces): the run starts, says what is
    missing, and the files, /proc, signals and ptrace of the worker (this process) stay out of reach."""
    if sandbox.probe().landlock_abi < 6:
        pytest.skip("signal scoping needs Landlock ABI 6")
    forced(pidns=False)
    data_dir = Path(app.config["DATA_DIR"])
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    for name in ("credentials_key", "secret_key"):  # this app has its keys in its config: put decoys there
        (data_dir / name).write_text("decoy\n")
    (data_dir / "runs" / "99").mkdir(parents=True, exist_ok=True)
    target = {"data_dir": str(data_dir), "worker_pids": [os.getpid()], "repo": str(Path(__file__).parent.parent),
              "redis_socket": str(data_dir / "no-redis-here.sock"), "other_run_dir": str(data_dir / "runs" / "99"),
              "marker": "no-pidns", "no_pidns": True}
    body = run_to_end(client, work, upload(client, f"TARGET = {target!r}\n".encode() + ESCAPES.read_bytes(),
                                           name="test_escapes.py"))
    log = client.get(f"/api/v1/runs/{body['id']}/log.txt").get_data(as_text=True)
    failed = [t["nodeid"] for t in body["tests"] if t["outcome"] != "passed"]
    assert body["state"] == "success" and not failed, (failed, log[-4000:])
    assert body["sandbox"]["mode"] == "landlock" and "Missing: no PID namespace" in body["sandbox"]["detail"]
    assert "DENIED read DATA_DIR/credentials_key: PermissionError" in log
    assert f"DENIED read /proc/{os.getpid()}/environ: PermissionError" in log
    assert f"DENIED kill -TERM {os.getpid()}: PermissionError" in log
    assert "ALLOWED loopback server and client" in log and "ALLOWED read" not in log


# ---- the other accounts: a root worker dropping to nobody, and a worker that is not root -----------------------

SYSTEM_PYTHON = "/usr/bin/python3"  # reachable by nobody (this venv's interpreter may sit under a private /root)
PROBE = '''import os
print("uid", os.getuid(), "gid", os.getgid())
print("capeff", next(l for l in open("/proc/self/status") if l.startswith("CapEff")).split()[1])
for path in DECOYS:
    try:
        open(path).read()
        print("ALLOWED read", path)
    except OSError as exc:
        print("DENIED read", path, type(exc).__name__)
open("mine.txt", "w").write("ok")
print("wrote own file")
'''


def _world_readable_decoy() -> tuple[Path, Path]:
    """A 0755 directory outside every allowed path with a 0644 file: only the sandbox keeps nobody out of it."""
    base = Path(tempfile.mkdtemp(prefix="cutover-decoy-"))
    base.chmod(0o755)
    (base / "secret.txt").write_text("decoy\n")
    (base / "secret.txt").chmod(0o644)
    run_dir = base / "run"
    run_dir.mkdir()
    run_dir.chmod(0o755)
    return base, run_dir


def _boot(run_dir: Path, decoys: list[str], **plan) -> dict:
    (run_dir / "sandbox_probe.py").write_text(f"DECOYS = {decoys!r}\n" + PROBE)
    return {"cpu_seconds": 30, "no_new_privs": True, "drop_capabilities": True, "module": "sandbox_probe",
            "landlock_abi": sandbox.probe().landlock_abi,
            "rules": [*sandbox.read_only_rules("/nonexistent-data-dir"), (str(run_dir), "rw"), ("/proc", "ro")],
            **plan}


needs_both = pytest.mark.skipif(not (os.access(SYSTEM_PYTHON, os.X_OK) and sandbox.probe().landlock_abi
                                     and sandbox.probe().namespace_prefix and os.geteuid() == 0),
                                reason="needs root, Landlock, namespaces and /usr/bin/python3")


@needs_both
def test_a_root_worker_drops_the_run_to_nobody_without_capabilities():
    import json
    import pwd
    import subprocess

    base, run_dir = _world_readable_decoy()
    try:
        nobody = pwd.getpwnam("nobody")
        boot = _boot(run_dir, [str(base / "secret.txt"), "/etc/shadow"], uid=nobody.pw_uid, gid=nobody.pw_gid)
        sandbox.chown_tree(run_dir, nobody.pw_uid, nobody.pw_gid)
        done = subprocess.run([*sandbox.probe().namespace_prefix, SYSTEM_PYTHON, "-c", sandbox.BOOT, json.dumps(boot)],
                              cwd=run_dir, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        assert f"uid {nobody.pw_uid} gid {nobody.pw_gid}" in done.stdout and "capeff 0000000000000000" in done.stdout
        assert f"DENIED read {base / 'secret.txt'} PermissionError" in done.stdout
        assert "DENIED read /etc/shadow PermissionError" in done.stdout and "wrote own file" in done.stdout
    finally:
        shutil.rmtree(base)


@needs_both
def test_a_worker_that_is_not_root_gets_the_namespaces_through_a_user_namespace():
    import json
    import subprocess

    setpriv = shutil.which("setpriv")
    prefix, why = sandbox.namespace_prefix(root=False)
    if setpriv is None or prefix is None:
        pytest.skip(f"no setpriv or no unprivileged user namespaces here: {why}")
    assert "--user" in prefix and "--map-root-user" in prefix
    base, run_dir = _world_readable_decoy()
    try:
        boot = _boot(run_dir, [str(base / "secret.txt")])
        sandbox.chown_tree(run_dir, 65534, 65534)
        as_nobody = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
        done = subprocess.run([*as_nobody, *prefix, SYSTEM_PYTHON, "-c", sandbox.BOOT, json.dumps(boot)],
                              cwd=run_dir, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        assert "uid 0 gid 0" in done.stdout  # root only inside its user namespace ...
        assert "capeff 0000000000000000" in done.stdout  # ... and without a capability even there
        assert f"DENIED read {base / 'secret.txt'} PermissionError" in done.stdout and "wrote own file" in done.stdout
        assert (run_dir / "mine.txt").stat().st_uid == 65534  # nobody outside
    finally:
        shutil.rmtree(base)
