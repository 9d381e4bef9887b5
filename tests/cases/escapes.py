# A hostile test file: every test tries one way out of the sandbox and passes only when it is refused.
# Uploaded as a user would, with a first line ``TARGET = {...}`` naming what to attack (written by the
# test that uploads it): DATA_DIR, the workers' pids, the app's code, the Redis socket, another run's dir.
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading

import pytest

TARGET: dict  # noqa: F821  (the uploading test puts it first)

DENIED = (PermissionError, FileNotFoundError, ProcessLookupError, ConnectionError, OSError, AssertionError)


def refused(name, attempt):
    """Run ``attempt``; it must raise. The log says which way each attempt ended."""
    try:
        got = attempt()
    except DENIED as exc:
        print(f"DENIED {name}: {type(exc).__name__}: {exc}")
        return
    print(f"ALLOWED {name}: {str(got)[:300]!r}")
    pytest.fail(f"{name} was allowed: {str(got)[:300]!r}")


def read(path):
    with open(path, "rb") as fh:
        return fh.read(200)


def write(path):
    with open(path, "w") as fh:
        fh.write("planted by a test run\n")
    return f"wrote {path}"


DATA_FILES = ["credentials_key", "secret_key", "cutover.db", "redis_password", "initial_admin_password",
              "redis/appendonlydir", "redis/redis.conf"]


@pytest.mark.parametrize("name", DATA_FILES)
def test_cannot_read_data_dir_files(name):
    refused(f"read DATA_DIR/{name}", lambda: read(os.path.join(TARGET["data_dir"], name)))


def test_cannot_list_data_dir():
    refused("list DATA_DIR", lambda: os.listdir(TARGET["data_dir"]))


def test_cannot_list_other_runs():
    refused("list DATA_DIR/runs", lambda: os.listdir(os.path.join(TARGET["data_dir"], "runs")))


def test_cannot_read_another_runs_log():
    refused("read another run's files", lambda: os.listdir(TARGET["other_run_dir"]))


@pytest.mark.parametrize("where", ["sample_tests/planted_test.py", "webapp/planted.py", "wsgi.py"])
def test_cannot_write_into_the_code(where):
    refused(f"write {where}", lambda: write(os.path.join(TARGET["repo"], where)))


def test_cannot_plant_an_upload():
    refused("write DATA_DIR/uploads", lambda: write(os.path.join(TARGET["data_dir"], "uploads", "test_planted.py")))


def test_cannot_write_into_the_interpreters_packages():
    import pytest as package
    refused("write site-packages", lambda: write(os.path.join(os.path.dirname(os.path.dirname(package.__file__)),
                                                              "planted.pth")))


def test_cannot_write_outside_its_directories():
    refused("write /tmp", lambda: write("/tmp/cutover-planted"))


def test_cannot_read_etc_shadow():
    refused("read /etc/shadow", lambda: read("/etc/shadow"))


def _redis_ping():
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(3)
        conn.connect(TARGET["redis_socket"])
        conn.sendall(b"PING\r\nKEYS *\r\n")
        reply = conn.recv(200)
    assert reply.startswith(b"+PONG"), reply  # NOAUTH: the socket answers, Redis does not
    return reply


def test_cannot_use_redis():
    refused("talk to Redis on its socket", _redis_ping)


@pytest.mark.parametrize("what", ["environ", "mem", "cmdline"])
def test_cannot_read_a_workers_proc(what):
    for pid in TARGET["worker_pids"]:
        refused(f"read /proc/{pid}/{what}", lambda: read(f"/proc/{pid}/{what}") or b"(empty)")


def test_cannot_signal_a_worker():
    for pid in TARGET["worker_pids"]:
        refused(f"kill -TERM {pid}", lambda: os.kill(pid, signal.SIGTERM))
        refused(f"kill -0 {pid}", lambda: os.kill(pid, 0))


def test_cannot_ptrace_a_worker():
    libc = ctypes.CDLL(None, use_errno=True)

    def attach(pid):
        if libc.ptrace(16, pid, None, None) != 0:  # PTRACE_ATTACH
            raise PermissionError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        return "attached"

    for pid in TARGET["worker_pids"]:
        refused(f"ptrace {pid}", lambda: attach(pid))


def test_holds_no_descriptor_of_the_worker():
    def leaked():
        found = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:") or target.startswith(TARGET["data_dir"]) \
                    and not target.startswith(os.getcwd()):
                found.append(f"{fd} -> {target}")
        assert found, "none"  # nothing to use: refused
        return found

    refused("use a descriptor inherited from the worker", leaked)


def test_cannot_gain_privileges():
    def capabilities():
        with open("/proc/self/status") as fh:
            effective = next(line for line in fh if line.startswith("CapEff:")).split()[1]
        assert int(effective, 16) != 0, f"CapEff {effective}"
        return effective

    refused("keep a capability", capabilities)


def test_leaves_a_process_behind():
    """Not an escape by itself: the uploading test checks that this process did not outlive the run."""
    if TARGET.get("no_pidns"):
        return  # without a PID namespace a process that leaves the run's group can outlive it (README says so)
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", TARGET["marker"]],
                     start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_loopback_networking_still_works():
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer():
        conn, _ = server.accept()
        with conn:
            conn.sendall(conn.recv(100).upper())

    thread = threading.Thread(target=answer)
    thread.start()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(b"hello")
        assert client.recv(100) == b"HELLO"
    thread.join()
    server.close()
    print("ALLOWED loopback server and client")


def test_its_own_files_and_temp_dir_work(tmp_path):
    (tmp_path / "note.txt").write_text("mine")
    assert (tmp_path / "note.txt").read_text() == "mine"
    with open("scratch.txt", "w") as fh:  # the run's own directory
        fh.write("mine too")
    print("ALLOWED own run and temp directories")
