"""What survives: unique IPs under a race, data across restarts, secrets generated once."""
from __future__ import annotations

import stat
import threading

from conftest import ADMIN, WORKLOAD, client_as, make_migration, make_workload

from webapp import create_app


def test_parallel_creates_of_one_ip_have_exactly_one_winner(app, config):
    apps = [create_app(config) for _ in range(8)]  # separate engines: separate connections
    barrier = threading.Barrier(len(apps))

    clients = [client_as(a, ADMIN) for a in apps]

    def create(client, ip, statuses):
        barrier.wait()
        statuses.append(client.post("/api/v1/workloads", json={**WORKLOAD, "ip": ip}).status_code)

    for round_ in range(5):
        statuses: list[int] = []
        threads = [threading.Thread(target=create, args=(c, f"10.5.0.{round_}", statuses)) for c in clients]
        [t.start() for t in threads]
        [t.join() for t in threads]
        assert sorted(statuses) == [201] + [409] * 7
    assert client_as(app, ADMIN).get("/api/v1/workloads").json["total"] == 5
    for each_app in apps:
        each_app.extensions["db"].kw["bind"].dispose()


def test_a_restart_keeps_every_record_and_can_still_read_the_secrets(config):
    config = {k: v for k, v in config.items() if k not in ("SECRET_KEY", "CREDENTIALS_KEY")}
    first = create_app(config)
    client = client_as(first, ADMIN)
    token = client.token
    source = make_workload(client)
    migration = make_migration(client, source["id"])
    first.extensions["db"].kw["bind"].dispose()

    second = create_app(config)  # same DATA_DIR and database: keys are read back from DATA_DIR
    assert second.config["CREDENTIALS_KEY"] == first.config["CREDENTIALS_KEY"]
    assert second.config["SECRET_KEY"] == first.config["SECRET_KEY"]
    again = client_as(second, ADMIN)
    again.token = token  # the token made before the restart still signs in (SECRET_KEY keys its hash)
    assert again.get(f"/api/v1/workloads/{source['id']}").json == source
    assert again.get(f"/api/v1/migrations/{migration['id']}").json == migration
    # decrypting works: an edit that keeps the password re-validates the stored credentials
    assert again.patch(f"/api/v1/workloads/{source['id']}", json={"storage": [{"name": "C:", "size": 1}]}).status_code == 200
    browser = second.test_client()  # and the browser's session from before the restart is still signed in
    browser.set_cookie(client.get_cookie("session").key, client.get_cookie("session").value)
    assert browser.get("/").status_code == 200 and browser.get("/workloads/").status_code == 200
    assert second.test_client().get("/workloads/").status_code == 302  # (without it: off to /login)
    second.extensions["db"].kw["bind"].dispose()


def test_generated_secrets_are_private_files_reused_on_the_next_start(tmp_path, monkeypatch):
    from webapp.config import ensure_secrets

    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("CREDENTIALS_KEY", raising=False)
    first = ensure_secrets(tmp_path)
    for name in ("secret_key", "credentials_key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    assert ensure_secrets(tmp_path) == first
    monkeypatch.setenv("SECRET_KEY", "from-env")
    assert ensure_secrets(tmp_path)["SECRET_KEY"] == "from-env"
