"""Worker hosts share nothing but DATABASE_URL and REDIS_URL: each worker its own DATA_DIR and its own copy of
the code; an upload, runs, migrations and events all complete, a killed worker's run ends "worker lost"."""
from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from sqlalchemy import select

from conftest import ROOT, make_migration, make_workload, wait_until

pytestmark = pytest.mark.slow

QUICK = b"def test_quick():\n    assert sum(range(10)) == 45\n"
SLOW = "sample_tests/test_slow_progress.py"
SHARED = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "CREDENTIALS_KEY", "MIGRATION_DURATION_SECONDS",
          "MAINTENANCE_INTERVAL_SECONDS", "ENV_LOCK_TTL_SECONDS", "RUN_TIMEOUT_SECONDS")


@pytest.fixture
def config(config):
    if not config["DATABASE_URL"].startswith("postgresql"):
        pytest.skip("hosts sharing only a database need PostgreSQL: set TEST_DATABASE_URL")
    return {**config, "ENV_LOCK_TTL_SECONDS": 3, "MAINTENANCE_INTERVAL_SECONDS": 0.5, "RUN_TIMEOUT_SECONDS": 60}


@pytest.fixture
def hosts(config, tmp_path):
    """``start(name)``: a ``python worker.py`` on a "host" of its own: a copy of just the code and a DATA_DIR."""
    procs: list[subprocess.Popen] = []

    def start(name: str) -> subprocess.Popen:
        home = tmp_path / name
        code = home / "code"
        for part in ("webapp", "sample_tests"):
            shutil.copytree(ROOT / part, code / part, ignore=shutil.ignore_patterns("__pycache__"))
        for part in ("worker.py", "wsgi.py"):
            shutil.copy(ROOT / part, code / part)
        env = {**os.environ, **{k: str(config[k]) for k in SHARED}, "DATA_DIR": str(home / "data")}
        env.pop("PYTHONPATH", None)
        with open(home / "worker.log", "ab") as log:
            procs.append(subprocess.Popen([sys.executable, "worker.py"], cwd=code, env=env, start_new_session=True,
                                          stdout=log, stderr=log))
        return procs[-1]

    yield start
    for proc in procs:
        kill_tree(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            kill_tree(proc.pid, signal.SIGKILL)
            proc.wait()


def kill_tree(pid: int, sig) -> None:
    """The worker, its work horse and pytest (each may be in a process group of its own)."""
    try:
        tree = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for proc in tree:
        try:
            proc.send_signal(sig)
        except psutil.NoSuchProcess:
            pass


def running_pytest(pid: int, run_id: int) -> bool:
    """Whether the worker ``pid`` runs run ``run_id``'s pytest (in that run's directory: the other hosts run
    other runs meanwhile)."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return False
    for child in children:
        try:
            if "pytest" in " ".join(child.cmdline()) and child.cwd().endswith(f"/runs/{run_id}"):
                return True
        except psutil.Error:
            continue
    return False


def test_workers_sharing_only_the_database_and_redis_do_all_the_work(app, client, hosts, tmp_path):
    shutil.rmtree(Path(app.config["DATA_DIR"]) / "uploads", ignore_errors=True)
    upload = client.post("/api/v1/test-files", data={"directory": "shared", "file": (io.BytesIO(QUICK), "test_quick.py")},
                         content_type="multipart/form-data")
    assert upload.status_code == 201, upload.json
    quick = upload.json["path"]
    assert not (Path(app.config["DATA_DIR"]) / "uploads").exists()  # the web host's disk holds no upload
    workers = [hosts(f"host{i}") for i in (1, 2, 3)]

    slow = client.post("/api/v1/runs", json={"environment_id": 1, "test_files": [SLOW]}).json["id"]
    runs = [client.post("/api/v1/runs", json={"environment_id": 1 + i % 10, "test_files": [quick]}) for i in range(30)]
    assert all(r.status_code == 201 for r in runs), [r.json for r in runs]
    workloads = [make_workload(client, ip=f"10.0.2.{n}") for n in range(10)]  # a source runs one at a time
    migrations = [make_migration(client, workload["id"])["id"] for workload in workloads]
    for migration in migrations:
        assert client.post(f"/api/v1/migrations/{migration}/run").status_code == 202
    events = [client.post("/api/v1/events", json={"user_id": "admin", "description": f"event {i}"}) for i in range(50)]
    assert all(e.status_code == 201 for e in events)

    holder = wait_until(lambda: next((w for w in workers if running_pytest(w.pid, slow)), None) if
                        client.get(f"/api/v1/runs/{slow}").json["state"] == "running" else None, 30,
                        message="the slow run to be running")
    kill_tree(holder.pid, signal.SIGKILL)  # that host dies: worker, work horse and pytest
    fourth = hosts("host4")

    def run_state(run_id):
        body = client.get(f"/api/v1/runs/{run_id}").json
        return body if body["state"] not in ("queued", "running") else None

    lost = wait_until(lambda: run_state(slow), 20, message="the killed worker's run to end")
    assert lost["state"] == "error" and lost["error"] == "worker lost", lost
    ids = [r.json["id"] for r in runs]
    wait_until(lambda: all(run_state(i) for i in ids), 50, interval=0.5, message="30 runs to end")
    assert [client.get(f"/api/v1/runs/{i}").json["state"] for i in ids] == ["success"] * 30
    wait_until(lambda: all(client.get(f"/api/v1/migrations/{m}/status").json["state"] == "success"
                           for m in migrations), 30, interval=0.5, message="10 migrations to succeed")
    wait_until(lambda: all(client.get(f"/api/v1/events/{e.json['id']}").json["status"] == "processed"
                           for e in events), 30, interval=0.5, message="50 events to be processed")

    from webapp.extensions import db
    from webapp.models import RunRow

    with app.app_context():
        rows = db.session.execute(select(RunRow.environment_id, RunRow.started_at, RunRow.finished_at)
                                  .where(RunRow.started_at.is_not(None)).order_by(RunRow.started_at)).all()
    by_env: dict[int, list] = {}
    for env, started, finished in rows:
        by_env.setdefault(env, []).append((started, finished))
    for env, spans in by_env.items():
        for (_, end), (start, _) in zip(spans, spans[1:]):
            assert end is not None and end <= start, f"environment {env} hosted two runs at once"
    assert fourth.poll() is None
    assert any((tmp_path / "host4" / "data" / "runs").glob("*/uploads/shared/test_quick.py")), \
        "the worker started later took no run"
