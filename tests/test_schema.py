"""The schema through Alembic: databases of the last release are adopted with every row, the models and
the newest revision agree, several processes may start at once, ``flask db``, downgrades."""
from __future__ import annotations

import hashlib
import shutil
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, Table, func, inspect, select, text

from webapp import models, schema
from webapp.db import Base, current_revision, head_revision, make_engine, upgrade

HEAD = "0011_environment_variables"
# columns of released tables added by later revisions
ADDED = {"runs": {"sandbox_mode", "sandbox_detail", "migration_id", "schedule_id", "pool", "priority",
                  "variable_names", "secret_names", "stages"},
         "environments": {"hold_by", "hold_reason", "hold_until", "labels",
                          "variables", "secret_names", "secrets_enc", "setup", "teardown"},
         "migrations": {"phase", "validation", "validation_run_id"}}
NEW_TABLES = {"users", "api_tokens", "uploads", "audit_log", "waves", "wave_migrations",
              "test_results", "test_stats", "schedules"}
# what an added column holds in a row written before it existed (others: None)
ADDED_DEFAULTS = {"runs.priority": "normal", "environments.labels": [], "environments.variables": {},
                  "environments.secret_names": []}
MISSING_INDEXES = {"workloads": "ix_workloads_id", "migrations": "ix_migrations_id", "runs": "ix_runs_id"}


@pytest.fixture
def empty_url(database_url):
    """The test's database with nothing in it: no tables, no alembic_version."""
    if database_url.startswith("sqlite"):
        path = Path(database_url.removeprefix("sqlite:///"))
        for name in (path.name, path.name + "-wal", path.name + "-shm"):
            path.with_name(name).unlink(missing_ok=True)
    else:
        engine = make_engine(database_url)
        Base.metadata.drop_all(engine)
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
        engine.dispose()
    return database_url


@pytest.fixture
def engine(empty_url):
    engine = make_engine(empty_url)
    yield engine
    engine.dispose()


def differences(connection) -> list:
    return compare_metadata(MigrationContext.configure(connection, opts=schema.COMPARE_OPTIONS), Base.metadata)


def at(hour: int) -> datetime:
    return datetime(2024, 5, 1, hour, 30, tzinfo=timezone.utc)


def released_rows() -> dict[str, list[dict]]:
    """A row or more in every table of the last release, with the columns it had."""
    return {
        "workloads": [dict(id=1, ip="10.0.0.10", username="admin", password_enc="gAAAA-secret", domain="CORP",
                           storage=[{"name": "C:\\", "size": 40}], created_at=at(8), updated_at=at(9))],
        "migrations": [dict(id=1, source_id=1, selected=["C:\\"], cloud_type="aws", cloud_username="cloud",
                            cloud_password_enc="gAAAA-cloud", cloud_domain="", target_vm={"ip": "10.0.0.10"},
                            state="success", error=None, progress=[{"step": "copy", "at": "2024-05-01"}],
                            cancel_requested=False, job_id="job-1", requested_by="alice", created_at=at(10),
                            updated_at=at(11), queued_at=at(10), started_at=at(10), heartbeat_at=at(11),
                            finished_at=at(11))],
        "environments": [dict(id=7, name="lab-seven", description="the old lab", enabled=False, updated_at=at(7))],
        "runs": [dict(id=1, username="alice", environment_id=7, test_files=["uploads/a/test_x.py"], state="passed",
                      exit_code=0, summary={"passed": 2}, tests=[{"name": "test_x", "outcome": "passed"}],
                      junit_xml="<testsuites/>", error=None, lock_token=None, job_id="run-1", cancel_requested=False,
                      log_size=11, created_at=at(12), dispatched_at=at(12), started_at=at(12), heartbeat_at=at(13),
                      finished_at=at(13)),
                 dict(id=2, username="bob", environment_id=7, test_files=["uploads/b/test_y.py"], state="running",
                      exit_code=None, summary=None, tests=None, junit_xml=None, error=None, lock_token="tok",
                      job_id="run-2", cancel_requested=True, log_size=4, created_at=at(14), dispatched_at=at(14),
                      started_at=at(14), heartbeat_at=at(14), finished_at=None)],
        "run_log_chunks": [dict(id=1, run_id=1, start=0, end=6, text="hello "),
                           dict(id=2, run_id=1, start=6, end=11, text="world"),
                           dict(id=3, run_id=2, start=0, end=4, text="busy")],
        "events": [dict(id="5b0f6a2e-0000-4000-8000-000000000001", user_id="alice", description="run 1 passed",
                        status="done", source="run", link="/runs/1", attempts=1, last_error=None, created_at=at(13),
                        queued_at=at(13), processed_at=at(13))],
        "notifications": [dict(id=1, event_id="5b0f6a2e-0000-4000-8000-000000000001", user_id="alice",
                               text="run 1 passed", link="/runs/1", created_at=at(13), read_at=None)],
    }


def insert_and_make_legacy(engine, rows) -> None:
    """Rows in every table, then the database as create_all left it: no alembic_version, the old indexes."""
    with engine.begin() as connection:
        for name, table_rows in rows.items():  # the tables as they were then (not today's defaults)
            connection.execute(Table(name, MetaData(), autoload_with=connection).insert(), table_rows)
        for index in MISSING_INDEXES.values():
            connection.execute(text(f"DROP INDEX {index}"))
        connection.execute(text("DROP TABLE alembic_version"))


def read_back(connection, name) -> list[dict]:
    table = Base.metadata.tables[name]
    return [dict(row._mapping) for row in connection.execute(select(table).order_by(*table.primary_key))]


def assert_kept(connection, name: str, expected: list[dict]) -> None:
    """Every row and value kept; the columns later revisions added are empty."""
    got = read_back(connection, name)
    added = ADDED.get(name, set())
    assert [{k: v for k, v in row.items() if k not in added} for row in got] == expected, name
    assert all(row[column] == ADDED_DEFAULTS.get(f"{name}.{column}") for row in got for column in added), name


def test_a_database_of_the_last_release_is_adopted_and_keeps_every_row(engine):
    command.upgrade(schema.config(engine), schema.BASELINE)
    rows = released_rows()
    insert_and_make_legacy(engine, rows)
    assert set(inspect(engine).get_table_names()) == schema.RELEASED_TABLES

    upgrade(engine)

    with engine.connect() as connection:
        for name, expected in rows.items():
            if name == "environments":  # the seed adds the others, and leaves this one alone
                kept = read_back(connection, name)[6]
                assert {k: v for k, v in kept.items() if k not in ADDED[name]} == expected[0]
                assert all(kept[column] == ADDED_DEFAULTS.get(f"{name}.{column}") for column in ADDED[name])
                assert connection.scalar(select(func.count()).select_from(models.EnvironmentRow)) == 100
            else:
                assert_kept(connection, name, expected)
        inspector = inspect(connection)
        for table, index in MISSING_INDEXES.items():
            assert index in {i["name"] for i in inspector.get_indexes(table)}
        assert NEW_TABLES <= set(inspector.get_table_names())
        assert current_revision(connection) == HEAD
        assert differences(connection) == []


def test_a_database_of_an_older_release_gets_the_tables_it_lacked(engine):
    """Before events existed: the baseline adds events and notifications and keeps the rest."""
    command.upgrade(schema.config(engine), schema.BASELINE)
    rows = {name: table_rows for name, table_rows in released_rows().items()
            if name not in ("events", "notifications")}
    insert_and_make_legacy(engine, rows)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE notifications"))
        connection.execute(text("DROP TABLE events"))

    upgrade(engine)

    with engine.connect() as connection:
        for name in ("workloads", "migrations", "runs", "run_log_chunks"):
            assert_kept(connection, name, rows[name])
        assert current_revision(connection) == HEAD
        assert differences(connection) == []


def test_the_models_and_the_newest_revision_describe_the_same_schema(engine):
    upgrade(engine)
    with engine.connect() as connection:
        assert current_revision(connection) == head_revision() == HEAD
        assert differences(connection) == []
        assert connection.scalar(select(func.count()).select_from(models.EnvironmentRow)) == 100


def test_processes_starting_at_once_all_upgrade_the_same_new_database(empty_url):
    engines = [make_engine(empty_url) for _ in range(3)]  # one each: separate connections, as processes have
    barrier = threading.Barrier(len(engines))
    errors: list[BaseException] = []

    def start(engine):
        barrier.wait()
        try:
            upgrade(engine)
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    [t.start() for t in threads]
    [t.join(60) for t in threads]
    assert errors == []
    with engines[0].connect() as connection:
        assert current_revision(connection) == HEAD
        assert connection.scalar(select(func.count()).select_from(models.EnvironmentRow)) == 100
    for engine in engines:
        engine.dispose()


def test_flask_db_upgrade_and_current(app):
    engine = app.extensions["db"].kw["bind"]
    runner = app.test_cli_runner()
    command.downgrade(schema.config(engine), schema.BASELINE)

    result = runner.invoke(args=["db", "current"])
    assert result.exit_code == 0 and result.output.strip() == schema.BASELINE

    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["db", "current"])
    assert result.exit_code == 0 and result.output.strip() == HEAD
    assert NEW_TABLES <= set(inspect(engine).get_table_names())

    result = runner.invoke(args=["init-db"])  # the older name still works
    assert result.exit_code == 0 and HEAD in result.output


@pytest.mark.parametrize("target", ["0002_missing_indexes", "base"])
def test_downgrade_then_upgrade_again(engine, target):
    upgrade(engine)
    cfg = schema.config(engine)
    command.downgrade(cfg, target)
    tables = set(inspect(engine).get_table_names())
    assert not NEW_TABLES & tables
    assert (schema.RELEASED_TABLES <= tables) == (target != "base")

    command.upgrade(cfg, "head")
    with engine.connect() as connection:
        assert current_revision(connection) == HEAD
        assert differences(connection) == []


def test_uploads_on_disk_before_0006_are_imported_with_their_owners_listed_and_runnable(config, work):
    """Revision 0006 moves DATA_DIR/uploads into the database: every file, its owner's row if it had one."""
    from conftest import client_as
    from webapp import create_app

    engine = make_engine(config["DATABASE_URL"])
    command.downgrade(schema.config(engine), "0005_runs_finished_index")
    base = Path(config["DATA_DIR"]) / "uploads"
    files = {"smoke/test_quick.py": b"def test_quick():\n    assert 1 + 1 == 2\n",
             "smoke/other_test.py": b"def test_other():\n    pass\n",
             "by-hand/deeper/test_deep.py": b"\xef\xbb\xbfdef test_deep():\n    pass\n"}
    for name, content in files.items():
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_bytes(content)
    (base / "smoke" / "helper.py").write_bytes(b"x = 1\n")  # not a test module: never listed, not imported
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO uploads (path, owner, uploaded_at) VALUES "
                                "('uploads/smoke/test_quick.py', 'olga', :at), ('uploads/gone/test_gone.py', 'olga', :at)"),
                           {"at": at(9)})
    engine.dispose()

    app = create_app(config)  # every process upgrades at start, with its DATA_DIR
    try:
        client = client_as(app, "admin")
        listed = {e["path"]: e for e in client.get("/api/v1/test-files").json if e["uploaded"]}
        assert {p: (e["size"], e["owner"]) for p, e in listed.items()} == {
            "uploads/smoke/test_quick.py": (len(files["smoke/test_quick.py"]), "olga"),
            "uploads/smoke/other_test.py": (len(files["smoke/other_test.py"]), None),
            "uploads/by-hand/deeper/test_deep.py": (len(files["by-hand/deeper/test_deep.py"]), None)}
        with app.app_context():
            from webapp.extensions import db

            rows = {r.path: r for r in db.session.scalars(select(models.UploadRow))}
            assert {p: (r.content, r.sha256) for p, r in rows.items()} == {
                f"uploads/{n}": (c, hashlib.sha256(c).hexdigest()) for n, c in files.items()}
            assert current_revision(db.session.connection()) == HEAD
            db.session.rollback()
        created = client.post("/api/v1/runs", json={"environment_id": 3, "test_files": sorted(listed)})
        assert created.status_code == 201, created.json
        shutil.rmtree(base)  # the files now come from the database, not the disk
        work()
        done = client.get(f"/api/v1/runs/{created.json['id']}").json
        assert done["state"] == "success", done
        assert sorted(t["nodeid"].split("::")[0] for t in done["tests"]) == sorted(listed)
    finally:
        app.extensions["db"].kw["bind"].dispose()


def test_the_results_runs_kept_before_0008_are_copied_into_test_results_and_the_runs_keep_them(engine):
    """The previous release (0007) kept a run's results only in ``runs.tests``: 0008 gives each its own row."""
    command.upgrade(schema.config(engine), "0007_validation_and_waves")
    kept = [{"nodeid": "sample_tests/test_x.py::test_a", "outcome": "passed", "duration": 0.25},
            {"nodeid": "sample_tests/test_x.py::test_b", "outcome": "failed", "duration": 1},
            {"nodeid": "", "outcome": "passed", "duration": 0.1}, "not a result"]
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO environments (id, name, description, enabled, updated_at) "
                                "VALUES (3, 'env-3', '', true, :at)"), {"at": at(7)})
        run = released_rows()["runs"][0]
        connection.execute(Table("runs", MetaData(), autoload_with=connection).insert(),  # the table of 0007
                           [{**run, "environment_id": 3, "tests": kept}])
    upgrade(engine)
    with engine.connect() as connection:
        results = connection.execute(select(models.TestResultRow.run_id, models.TestResultRow.environment_id,
                                            models.TestResultRow.nodeid, models.TestResultRow.outcome,
                                            models.TestResultRow.duration, models.TestResultRow.finished_at)
                                     .order_by(models.TestResultRow.id)).all()
        assert [tuple(r) for r in results] == [
            (1, 3, "sample_tests/test_x.py::test_a", "passed", 0.25, at(13)),
            (1, 3, "sample_tests/test_x.py::test_b", "failed", 1.0, at(13))]
        assert connection.scalar(select(models.RunRow.tests)) == kept
        stats = connection.execute(select(models.TestStatRow).order_by(models.TestStatRow.nodeid)).all()
        assert [(s.nodeid, s.runs, s.passed, s.failed, s.recent, s.durations, s.pass_rate, s.last_outcome,
                 s.last_run_id, s.last_at) for s in stats] == [
            ("sample_tests/test_x.py::test_a", 1, 1, 0, "P", [0.25], 1.0, "passed", 1, at(13)),
            ("sample_tests/test_x.py::test_b", 1, 0, 1, "F", [1.0], 0.0, "failed", 1, at(13))]
        assert current_revision(connection) == HEAD


def test_sqlite_foreign_keys_are_back_on_after_an_upgrade_that_rebuilt_tables(engine):
    """0010 rebuilds ``runs`` on SQLite with foreign keys off (a drop would cascade to the log chunks); every
    connection the app gets afterwards enforces them again."""
    if engine.dialect.name != "sqlite":
        pytest.skip("a SQLite pragma")
    command.upgrade(schema.config(engine), "0009_holds_and_schedules")
    upgrade(engine)
    for _ in range(3):
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
