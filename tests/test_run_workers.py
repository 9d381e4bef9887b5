"""Exclusive environments on real worker processes: ordering under a race, cancel, timeout, a killed worker."""
from __future__ import annotations

import io
import os
import signal
import threading
import time
from datetime import datetime, timedelta

import psutil
import pytest

from conftest import ADMIN, audited_at, client_as, wait_until

pytestmark = pytest.mark.slow

QUICK = "uploads/race/test_quick.py"
SLOW = "sample_tests/test_slow_progress.py"


@pytest.fixture
def config(config):
    return {**config, "ENV_LOCK_TTL_SECONDS": 3, "MAINTENANCE_INTERVAL_SECONDS": 0.5, "RUN_TIMEOUT_SECONDS": 60}


@pytest.fixture
def quick_test(client):
    body = b"def test_quick():\n    assert sum(range(10)) == 45\n"
    response = client.post("/api/v1/test-files", data={"directory": "race", "file": (io.BytesIO(body), "test_quick.py")},
                           content_type="multipart/form-data")
    assert response.status_code == 201, response.json
    return response.json["path"]


def run(client, run_id):
    return client.get(f"/api/v1/runs/{run_id}").json


def create(client, files, environment_id=7):
    response = client.post("/api/v1/runs", json={"environment_id": environment_id, "test_files": files})
    assert response.status_code == 201, response.json
    return response.json["id"]


def finished(client, run_id):
    body = run(client, run_id)
    return body if body["state"] not in ("queued", "running") else None


def pytest_processes_under(pid: int) -> list[psutil.Process]:
    try:
        tree = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [p for p in tree if "pytest" in _cmdline(p)]


def _cmdline(proc: psutil.Process) -> str:
    """A process's command line; "" for one that ended meanwhile (a zombie too: it runs nothing any more)."""
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""


def all_pytest_runs(run_dir_marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        try:
            if "pytest" in " ".join(proc.info["cmdline"] or []) and run_dir_marker in (proc.info["cwd"] or ""):
                found.append(proc)
        except psutil.Error:
            pass
    return found


def test_sixteen_runs_created_at_once_never_overlap_and_start_in_creation_order(app, quick_test, worker_processes):
    worker_processes(3)
    clients = [client_as(app, ADMIN) for _ in range(16)]  # one per thread: a test client is not thread-safe
    for round_ in range(2):
        ids, barrier, lock = [], threading.Barrier(16), threading.Lock()

        def post(client):
            barrier.wait()
            run_id = create(client, [quick_test], environment_id=11 + round_)
            with lock:
                ids.append(run_id)

        threads = [threading.Thread(target=post, args=(c,)) for c in clients]
        [t.start() for t in threads]
        [t.join() for t in threads]
        assert len(ids) == 16, "every create must succeed"
        client = clients[0]
        runs = [wait_until(lambda i=i: finished(client, i), 60, message=f"run {i}") for i in sorted(ids)]
        assert [r["state"] for r in runs] == ["success"] * 16
        intervals = [(datetime.fromisoformat(r["started_at"]), datetime.fromisoformat(r["finished_at"])) for r in runs]
        for (start_a, end_a), (start_b, end_b) in zip(intervals, intervals[1:]):
            assert start_a < end_a <= start_b < end_b, "runs overlapped or started out of creation order"


def test_cancel_a_running_run_kills_pytest_and_its_children_within_two_seconds(app, client, worker_processes):
    worker_processes(1)
    run_id = create(client, [SLOW])
    wait_until(lambda: "progress:" in client.get(f"/api/v1/runs/{run_id}/log").json["text"], 20, message="live output")
    marker = os.path.join(app.config["RUNS_DIR"], str(run_id))
    assert all_pytest_runs(marker), "pytest should be running in the run's directory"
    assert client.post(f"/api/v1/runs/{run_id}/cancel").status_code == 202
    # The promise is the server's, timed on its clock: from the cancel (its audit entry, written as it is asked)
    # to the run's end. This test's own polls share a loaded machine, so they only wait for it.
    body = wait_until(lambda: finished(client, run_id), 10, message="the cancel")
    asked = audited_at(client, "run.cancel", f"run:{run_id}")
    assert datetime.fromisoformat(body["finished_at"]) - asked < timedelta(seconds=2)
    assert body["state"] == "cancelled"
    assert not all_pytest_runs(marker), "no pytest process may outlive a cancelled run"
    assert client.get("/api/v1/environments/7").json["status"] == "idle"


def test_a_run_over_its_time_limit_ends_in_error(client, config, worker_processes):
    worker_processes(1, RUN_TIMEOUT_SECONDS=1.5)
    run_id = create(client, [SLOW])
    body = wait_until(lambda: finished(client, run_id), 15, message="the timeout")
    assert body["state"] == "error" and body["error"] == "timed out after 1.5 s"


def test_a_worker_killed_mid_run_frees_the_environment_and_the_next_run_completes(app, client, quick_test,
                                                                                   worker_processes):
    workers = worker_processes(2)
    first = create(client, [SLOW])
    second = create(client, [quick_test])
    holder = wait_until(lambda: next((w for w in workers if pytest_processes_under(w.pid)), None), 20,
                        message="pytest of the first run to start")
    doomed = [psutil.Process(holder.pid), *psutil.Process(holder.pid).children(recursive=True)]
    for proc in doomed:  # the whole worker host dies: worker, work horse and pytest
        proc.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    ttl = app.config["ENV_LOCK_TTL_SECONDS"]
    lost = wait_until(lambda: finished(client, first), ttl + 10, message="the lost run to be ended")
    assert lost["state"] == "error" and lost["error"] == "worker lost"
    done = wait_until(lambda: finished(client, second), 20, message="the next run")
    assert done["state"] == "success"
    assert time.monotonic() - killed_at < ttl + 10 + 20


def test_a_run_silent_for_longer_than_the_lock_ttl_is_not_declared_lost(app, client, worker_processes):
    """Liveness is the worker's watchdog (lock + heartbeat every ttl/3), not pytest's output."""
    body = b"import time\n\ndef test_silent():\n    time.sleep(6)\n"
    response = client.post("/api/v1/test-files", data={"directory": "quiet", "file": (io.BytesIO(body), "test_silent.py")},
                           content_type="multipart/form-data")
    assert response.status_code == 201, response.json
    worker_processes(1, ENV_LOCK_TTL_SECONDS=2, MAINTENANCE_INTERVAL_SECONDS=0.3)
    run_id = create(client, [response.json["path"]], environment_id=9)
    done = wait_until(lambda: finished(client, run_id), 30, message="the silent run to end")
    assert (done["state"], done["error"]) == ("success", None), done
    assert done["summary"]["passed"] == 1
