"""``cutover backup`` / ``cutover restore``: a consistent copy of a live all-in-one's SQLite database under
write load, restored into a fresh DATA_DIR with every confirmed record; and everything restore refuses."""
from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from e2e import allinone  # noqa: F401  (the fixture)
from webapp.cli import cutover

ROOT = Path(__file__).resolve().parent.parent
KEYS = ("secret_key", "credentials_key", "redis_password")


def cli(data_dir: Path, *args: str, **env):
    return CliRunner().invoke(cutover, list(args), env={"DATA_DIR": str(data_dir), "DATABASE_URL": None, **env})


@pytest.fixture
def data_dir(tmp_path, sqlite_template) -> Path:
    """A DATA_DIR with a database at the newest revision (no app running)."""
    path = tmp_path / "data"
    path.mkdir()
    shutil.copyfile(sqlite_template, path / "cutover.db")
    return path


def test_backup_and_restore_of_postgresql_say_to_use_its_tools_and_fail(tmp_path):
    url = "postgresql://cutover@db.example/cutover"
    backup = cli(tmp_path, "backup", str(tmp_path / "b.db"), DATABASE_URL=url)
    assert backup.exit_code != 0 and "pg_dump" in backup.output
    restore = cli(tmp_path, "restore", str(tmp_path / "b.db"), DATABASE_URL=url)
    assert restore.exit_code != 0
    assert not (tmp_path / "b.db").exists()


def test_backup_refuses_to_overwrite_a_file_unless_forced(data_dir, tmp_path):
    target = tmp_path / "b.db"
    target.write_text("keep me")
    refused = cli(data_dir, "backup", str(target))
    assert refused.exit_code != 0 and "--force" in refused.output and target.read_text() == "keep me"
    done = cli(data_dir, "backup", str(target), "--force")
    assert done.exit_code == 0, done.output
    assert "credentials_key" in done.output  # the keys are not in it: it says so
    with sqlite3.connect(target) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_restore_refuses_what_is_not_a_cutover_sqlite_database(tmp_path):
    fresh = tmp_path / "fresh"
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    assert "not a SQLite database" in cli(fresh, "restore", str(junk)).output
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    result = cli(fresh, "restore", str(other))
    assert result.exit_code != 0 and "alembic_version" in result.output
    assert not (fresh / "cutover.db").exists()


def test_restore_refuses_a_running_allinone_and_an_existing_database_unless_forced(data_dir, tmp_path):
    backup = tmp_path / "b.db"
    assert cli(data_dir, "backup", str(backup)).exit_code == 0
    target = tmp_path / "target"
    target.mkdir()
    with open(target / ".allinone.lock", "w") as lock:  # as a running all-in-one holds it
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = cli(target, "restore", str(backup))
        assert result.exit_code != 0 and "running" in result.output
    assert not (target / "cutover.db").exists()
    (target / "cutover.db").write_text("the old one")
    (target / "cutover.db-wal").write_text("the old one's WAL")
    result = cli(target, "restore", str(backup))
    assert result.exit_code != 0 and "--force" in result.output
    assert (target / "cutover.db").read_text() == "the old one"
    result = cli(target, "restore", str(backup), "--force")
    assert result.exit_code == 0, result.output
    assert not (target / "cutover.db-wal").exists()  # the old WAL would corrupt the restored file
    assert "credentials_key" in result.output  # no keys in this DATA_DIR yet: it says to copy them
    with sqlite3.connect(target / "cutover.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        [(actor, via)] = conn.execute("SELECT actor, via FROM audit_log WHERE action = 'database.restore'").fetchall()
    assert (actor, via) == ("system", "cli")


def _command(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SECRET_KEY", "CREDENTIALS_KEY")}
    return subprocess.run([sys.executable, "-m", "webapp.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**env, "DATA_DIR": str(data_dir)}, timeout=60)


class Writer(threading.Thread):
    """POSTs events and workloads as fast as the instance takes them; remembers each 201 as it gets it."""

    def __init__(self, http):
        super().__init__(daemon=True)
        self.http, self.stop = http, threading.Event()
        self.created: list[tuple[str, str | int]] = []
        self.failures: list[str] = []

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            kind = "events" if n % 2 else "workloads"
            body = {"user_id": "admin", "description": f"event {n}"} if n % 2 else {
                "ip": f"10.9.{n // 250}.{n % 250 + 1}", "credentials": {"username": "u", "password": f"pw-{n}"},
                "storage": [{"name": "C:\\", "size": 40}]}
            try:
                response = self.http.post(f"/api/v1/{kind}", body)
            except OSError as exc:  # a timeout: the record may or may not exist, it was never confirmed
                self.failures.append(repr(exc))
                continue
            if response.status == 201:
                self.created.append((kind, response.json()["id"]))
            else:
                self.failures.append(repr(response))
            self.http.bodies.clear()


@pytest.mark.slow
def test_a_backup_of_a_live_instance_under_write_load_restores_every_confirmed_record(allinone, tmp_path,  # noqa: F811
                                                                                      redis_server):
    live = tmp_path / "live"
    instance = allinone(data_dir=live, workers=1)
    http = instance.http()
    writer = Writer(type(http)(instance.url, token=http.token))
    writer.start()
    try:
        deadline = time.monotonic() + 30
        while len(writer.created) < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        confirmed = list(writer.created)  # every record the writer had a 201 for before the backup started
        backup = _command(live, "backup", str(tmp_path / "backup.db"))
        during = len(writer.created) - len(confirmed)
    finally:
        writer.stop.set()
        writer.join(15)
    assert backup.returncode == 0, backup.stderr
    assert len(confirmed) >= 30 and during > 0, (len(confirmed), during, writer.failures[:3])  # it wrote meanwhile
    assert not writer.failures, writer.failures[:3]

    fresh = tmp_path / "fresh"
    fresh.mkdir(mode=0o700)
    for name in KEYS:  # backed up separately, as the README says
        shutil.copy2(live / name, fresh / name)
    restore = _command(fresh, "restore", str(tmp_path / "backup.db"))
    assert restore.returncode == 0, restore.stderr
    with sqlite3.connect(fresh / "cutover.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        have = {kind: {row[0] for row in conn.execute(f"SELECT id FROM {kind}")} for kind in ("events", "workloads")}
    missing = [(kind, key) for kind, key in confirmed if key not in have[kind]]
    assert not missing, missing[:5]

    from webapp import create_app
    from webapp.extensions import db, vault
    from webapp.models import WorkloadRow

    app = create_app({"DATA_DIR": str(fresh), "DATABASE_URL": f"sqlite:///{fresh / 'cutover.db'}",
                      "REDIS_URL": redis_server.url, "TESTING": True})
    try:
        workload_id = next(key for kind, key in confirmed if kind == "workloads")
        answer = app.test_client().get(f"/api/v1/workloads/{workload_id}",
                                       headers={"Authorization": f"Bearer {http.token}"})  # the live instance's token
        assert answer.status_code == 200, answer.json
        assert answer.json["storage"] == [{"name": "C:\\", "size": 40}]
        with app.app_context():  # the copied credentials_key reads the stored password
            row = db.session.get(WorkloadRow, workload_id)
            assert vault.decrypt(row.password_enc).startswith("pw-")
    finally:
        app.extensions["db"].kw["bind"].dispose()
